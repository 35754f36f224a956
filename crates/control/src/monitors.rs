//! Connection monitors, national-standard gateway certificates, jobs of long operations, and usage counts.

use openvgw_core::model::{
    CertificateInfo, ConnectionMonitor, CryptoSuite, CustomerGateway, GatewayCertificate, GatewayRole, Index, Job,
    JobKind, JobStatus, JobStep, Scope, VpnConnection, VpnGateway,
};
use openvgw_core::{now_ms, Error, Kind, Precondition, Result, Secret};
use openvgw_store::ListQuery;

use crate::{gateway_for_change, Ctx, Service};

/// A gateway's certificates as uploaded (checked by the dialect).
#[derive(Debug, Clone)]
pub struct GatewayCertificates {
    pub certificate: CertificateInfo,
    pub private_key: Secret,
    pub chain: CertificateInfo,
    pub enc_certificate: CertificateInfo,
    pub enc_private_key: Secret,
}

/// Resources of a scope, as quotas count them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub site_gateways: u64,
    pub client_gateways: u64,
    pub customer_gateways: u64,
    pub connections: u64,
}

impl Service {
    /// Starts monitoring a connection (one monitor per connection).
    pub fn create_monitor(&self, ctx: &Ctx, connection_id: &str) -> Result<ConnectionMonitor> {
        self.mutate(ctx, |tx| {
            let conn: VpnConnection = tx.require(&ctx.scope, connection_id)?;
            if tx.count::<ConnectionMonitor>(&ListQuery::children_of(&ctx.scope, connection_id))? > 0 {
                return Err(Error::AlreadyExists { kind: Kind::ConnectionMonitor, what: connection_id.to_string() });
            }
            let gw: VpnGateway = tx.require(&ctx.scope, &conn.gateway_id)?;
            let cgw: CustomerGateway = tx.require(&ctx.scope, &conn.customer_gateway_id)?;
            let monitor = ConnectionMonitor {
                id: ctx.new_id(Kind::ConnectionMonitor),
                scope: ctx.scope.clone(),
                connection_id: conn.id.clone(),
                gateway_id: gw.id.clone(),
                source_ip: Self::check_public_ip_index(&gw, conn.public_ip_index)?,
                destination_ip: cgw.address(),
                created_at: now_ms(),
            };
            tx.insert(&monitor)?;
            Ok(monitor)
        })
    }

    pub fn get_monitor(&self, scope: &Scope, id: &str) -> Result<ConnectionMonitor> {
        self.read(|tx| tx.require(scope, id))
    }

    /// Monitors of a scope, optionally of one connection.
    pub fn list_monitors(&self, scope: &Scope, connection_id: Option<&str>) -> Result<Vec<ConnectionMonitor>> {
        self.read(|tx| tx.all(&ListQuery { scope: Some(scope), parent_id: connection_id, ..Default::default() }))
    }

    pub fn delete_monitor(&self, ctx: &Ctx, id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            tx.require::<ConnectionMonitor>(&ctx.scope, id)?;
            tx.delete_tree(Kind::ConnectionMonitor, id)
        })
    }

    /// The monitor of a connection, if any.
    pub fn monitor_of(&self, scope: &Scope, connection_id: &str) -> Result<Option<ConnectionMonitor>> {
        self.read(|tx| tx.first(&ListQuery::children_of(scope, connection_id)))
    }

    /// Uploads the certificates of a national-standard gateway (one set per gateway).
    pub fn upload_gateway_certificate(
        &self,
        ctx: &Ctx,
        gateway_id: &str,
        name: &str,
        certs: GatewayCertificates,
    ) -> Result<GatewayCertificate> {
        self.mutate(ctx, |tx| {
            let gw = gateway_for_change(tx, ctx, gateway_id)?;
            if gw.crypto_suite != CryptoSuite::NationalStandard {
                return Err(Error::Precondition(Precondition::NotNationalStandard));
            }
            if tx.count::<GatewayCertificate>(&ListQuery::children_of(&ctx.scope, gateway_id))? > 0 {
                return Err(Error::AlreadyExists { kind: Kind::GatewayCertificate, what: gateway_id.to_string() });
            }
            let now = now_ms();
            let cert = GatewayCertificate {
                id: ctx.new_id(Kind::GatewayCertificate),
                scope: ctx.scope.clone(),
                gateway_id: gw.id.clone(),
                name: name.to_string(),
                certificate: certs.certificate.clone(),
                private_key: certs.private_key.clone(),
                chain: certs.chain.clone(),
                enc_certificate: certs.enc_certificate.clone(),
                enc_private_key: certs.enc_private_key.clone(),
                created_at: now,
                updated_at: now,
            };
            tx.insert(&cert)?;
            Ok(cert)
        })
    }

    /// The certificates of a gateway, if uploaded.
    pub fn gateway_certificate(&self, scope: &Scope, gateway_id: &str) -> Result<Option<GatewayCertificate>> {
        self.read(|tx| {
            tx.require::<VpnGateway>(scope, gateway_id)?;
            tx.first(&ListQuery::children_of(scope, gateway_id))
        })
    }

    /// Every gateway certificate of a scope.
    pub fn gateway_certificates(&self, scope: &Scope) -> Result<Vec<GatewayCertificate>> {
        self.read(|tx| tx.all(&ListQuery::in_scope(scope)))
    }

    /// Renames and/or replaces (parts of) a gateway's certificates.
    pub fn update_gateway_certificate(
        &self,
        ctx: &Ctx,
        gateway_id: &str,
        certificate_id: &str,
        name: Option<String>,
        replace: impl FnOnce(&mut GatewayCertificate) -> Result<()>,
    ) -> Result<GatewayCertificate> {
        self.mutate(ctx, |tx| {
            let mut cert: GatewayCertificate = tx.require(&ctx.scope, certificate_id)?;
            if cert.gateway_id != gateway_id {
                return Err(Error::not_found(Kind::GatewayCertificate, certificate_id));
            }
            if let Some(n) = name {
                cert.name = n;
            }
            replace(&mut cert)?;
            cert.updated_at = now_ms();
            tx.update(&cert)?;
            Ok(cert)
        })
    }

    /// Records a job on a resource; the steps finish at once (openvgw has no long-running upgrade work), and the
    /// job waits for confirmation when `await_confirmation`.
    pub fn record_job(
        &self,
        ctx: &Ctx,
        resource_id: &str,
        kind: JobKind,
        steps: &[&str],
        await_confirmation: bool,
    ) -> Result<Job> {
        self.mutate(ctx, |tx| {
            let now = now_ms();
            let job = Job {
                id: ctx.new_id(Kind::Job),
                scope: ctx.scope.clone(),
                resource_id: resource_id.to_string(),
                kind,
                status: if await_confirmation { JobStatus::AwaitingConfirmation } else { JobStatus::Succeeded },
                steps: steps
                    .iter()
                    .map(|s| JobStep {
                        id: ctx.new_id(Kind::Job),
                        name: (*s).to_string(),
                        status: JobStatus::Succeeded,
                        created_at: now,
                        finished_at: Some(now),
                    })
                    .collect(),
                error: String::new(),
                created_at: now,
                finished_at: (!await_confirmation).then_some(now),
            };
            tx.insert(&job)?;
            Ok(job)
        })
    }

    /// Marks a job waiting for confirmation as finished with `status`.
    pub fn finish_job(&self, ctx: &Ctx, job_id: &str, status: JobStatus) -> Result<Job> {
        self.mutate(ctx, |tx| {
            let mut job: Job = tx.require(&ctx.scope, job_id)?;
            job.status = status;
            job.finished_at = Some(now_ms());
            tx.update(&job)?;
            Ok(job)
        })
    }

    /// Jobs of a scope, optionally of one resource.
    pub fn list_jobs(&self, scope: &Scope, resource_id: Option<&str>) -> Result<Vec<Job>> {
        self.read(|tx| {
            let mut q = ListQuery::in_scope(scope);
            if let Some(r) = resource_id {
                q.keys.push((Index::GatewayId, r.to_string()));
            }
            tx.all(&q)
        })
    }

    pub fn delete_job(&self, ctx: &Ctx, job_id: &str) -> Result<()> {
        self.mutate(ctx, |tx| {
            tx.require::<Job>(&ctx.scope, job_id)?;
            tx.delete_tree(Kind::Job, job_id)
        })
    }

    pub fn usage(&self, scope: &Scope) -> Result<Usage> {
        self.read(|tx| {
            let q = ListQuery::in_scope(scope);
            let role = |r: GatewayRole| q.clone().key(Index::GatewayRole, r.as_str());
            Ok(Usage {
                site_gateways: tx.count::<VpnGateway>(&role(GatewayRole::Site))?,
                client_gateways: tx.count::<VpnGateway>(&role(GatewayRole::Client))?,
                customer_gateways: tx.count::<CustomerGateway>(&q)?,
                connections: tx.count::<VpnConnection>(&q)?,
            })
        })
    }
}
