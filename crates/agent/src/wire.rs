//! Between the driver's types and the protocol's messages, both ways (one place for both sides).

use openvgw_dataplane::DataplaneError;
use serde::{de::DeserializeOwned, Serialize};

use crate::proto::{answer, Failure};

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, DataplaneError> {
    serde_json::to_vec(value).map_err(|e| DataplaneError::Failed(format!("agent protocol: encoding: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DataplaneError> {
    serde_json::from_slice(bytes).map_err(|e| DataplaneError::Failed(format!("agent protocol: decoding: {e}")))
}

/// A driver's error as the agent reports it.
pub(crate) fn failure(e: DataplaneError) -> answer::Result {
    answer::Result::Failure(match e {
        DataplaneError::Unsupported { backend, what } => {
            Failure { unsupported: true, backend: backend.to_string(), message: what }
        }
        DataplaneError::Failed(message) => Failure { unsupported: false, backend: String::new(), message },
    })
}

/// The error an agent reported, as the control plane's caller sees it. `Unsupported` names its backend with a
/// `'static` string: the names the drivers have are matched, anything else is reported as a failure.
pub(crate) fn error_of(agent: &str, f: Failure) -> DataplaneError {
    let backend = match f.backend.as_str() {
        "netns" => Some("netns"),
        "simulated" => Some("simulated"),
        _ => None,
    };
    match (f.unsupported, backend) {
        (true, Some(backend)) => DataplaneError::Unsupported { backend, what: f.message },
        _ => DataplaneError::Failed(format!("agent {agent}: {}", f.message)),
    }
}
