//! One paging type for every list: offset paging (Alibaba `PageNumber`, Huawei `offset`) and keyset paging behind an
//! opaque cursor (Alibaba `NextToken`, Huawei `marker`).
//!
//! Keyset pages follow the store's insertion order (a sequence number that never repeats), so a row created or
//! deleted between two requests is neither skipped nor repeated on the pages that follow.

/// The store's position after the last row of a page. Dialects encode it into their own token format and hand
/// back what the client returned; the store refuses cursors it did not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// Skip `offset` rows, return at most `limit`.
    Offset { offset: u64, limit: u64 },
    /// The rows after `cursor` (from the start when `None`), at most `limit`.
    After { cursor: Option<Cursor>, limit: u64 },
}

impl PageRequest {
    /// Every row (internal use: cascades, the reconciler).
    pub const ALL: PageRequest = PageRequest::Offset { offset: 0, limit: u64::MAX };

    /// Page `number` (from 1) of `size` rows.
    pub fn numbered(number: u64, size: u64) -> PageRequest {
        PageRequest::Offset { offset: number.saturating_sub(1).saturating_mul(size), limit: size }
    }

    pub fn first(limit: u64) -> PageRequest {
        PageRequest::After { cursor: None, limit }
    }

    pub fn limit(&self) -> u64 {
        match self {
            PageRequest::Offset { limit, .. } | PageRequest::After { limit, .. } => *limit,
        }
    }
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Rows matching the filter, on every page.
    pub total: u64,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), total: self.total, next: self.next }
    }

    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page { items: self.items.into_iter().map(f).collect::<Result<_, E>>()?, total: self.total, next: self.next })
    }

    /// Pages a list already in memory (used where the filter is computed, e.g. a derived status).
    pub fn of_vec(all: Vec<T>, req: &PageRequest, cursor_of: impl Fn(&T) -> Cursor) -> Page<T>
    where
        T: Clone,
    {
        let total = all.len() as u64;
        let (start, limit) = match req {
            PageRequest::Offset { offset, limit } => ((*offset).min(total) as usize, *limit),
            PageRequest::After { cursor: None, limit } => (0, *limit),
            PageRequest::After { cursor: Some(c), limit } => {
                (all.iter().position(|t| cursor_of(t) == *c).map(|i| i + 1).unwrap_or(all.len()), *limit)
            }
        };
        let end = start.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX)).min(all.len());
        let items: Vec<T> = all[start..end].to_vec();
        let next = if end < all.len() { items.last().map(&cursor_of) } else { None };
        Page { items, total, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_pages() {
        assert_eq!(PageRequest::numbered(1, 10), PageRequest::Offset { offset: 0, limit: 10 });
        assert_eq!(PageRequest::numbered(3, 50), PageRequest::Offset { offset: 100, limit: 50 });
        assert_eq!(PageRequest::numbered(u64::MAX, 50).limit(), 50);
    }

    #[test]
    fn in_memory_pages() {
        let all: Vec<u32> = (1..=5).collect();
        let cur = |v: &u32| Cursor(v.to_string());
        let p = Page::of_vec(all.clone(), &PageRequest::first(2), cur);
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.total, 5);
        let p = Page::of_vec(all.clone(), &PageRequest::After { cursor: p.next, limit: 2 }, cur);
        assert_eq!(p.items, vec![3, 4]);
        let p = Page::of_vec(all.clone(), &PageRequest::After { cursor: p.next, limit: 2 }, cur);
        assert_eq!(p.items, vec![5]);
        assert!(p.next.is_none());
        let p = Page::of_vec(all, &PageRequest::Offset { offset: 9, limit: 2 }, cur);
        assert!(p.items.is_empty());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Following `next` from the first page visits every item once, in order, and the last page says so.
            #[test]
            fn cursor_pages_cover_the_list(n in 0u32..60, limit in 1u64..12) {
                let all: Vec<u32> = (0..n).collect();
                let cur = |v: &u32| Cursor(format!("c{v}"));
                let (mut seen, mut req, mut pages) = (Vec::new(), PageRequest::first(limit), 0);
                loop {
                    let page = Page::of_vec(all.clone(), &req, cur);
                    prop_assert!(page.items.len() as u64 <= limit);
                    prop_assert_eq!(page.total, u64::from(n));
                    seen.extend(page.items);
                    pages += 1;
                    prop_assert!(pages <= n + 1, "paging does not end");
                    match page.next {
                        Some(c) => req = PageRequest::After { cursor: Some(c), limit },
                        None => break,
                    }
                }
                prop_assert_eq!(seen, all);
            }

            /// Numbered pages concatenate to the list.
            #[test]
            fn numbered_pages_cover_the_list(n in 0u32..60, size in 1u64..12) {
                let all: Vec<u32> = (0..n).collect();
                let cur = |v: &u32| Cursor(v.to_string());
                let mut seen = Vec::new();
                for number in 1..=u64::from(n).div_ceil(size) + 1 {
                    seen.extend(Page::of_vec(all.clone(), &PageRequest::numbered(number, size), cur).items);
                }
                prop_assert_eq!(seen, all);
            }
        }
    }
}
