//! JetStream source: consumer info through the JetStream API (async-nats).
//! Foundation stage: connect and read the account info each poll.

use super::Poller;
use crate::config::{JetstreamConfig, Timing};
use crate::model::{ErrorKind, PollData, PollFailure, SourceId};

#[derive(Debug)]
pub struct JetstreamPoller {
    id: SourceId,
    config: JetstreamConfig,
    timing: Timing,
    client: Option<async_nats::Client>,
}

impl JetstreamPoller {
    pub fn new(id: SourceId, config: JetstreamConfig, timing: Timing) -> Self {
        Self {
            id,
            config,
            timing,
            client: None,
        }
    }

    async fn connect(&mut self) -> Result<async_nats::Client, PollFailure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("lagwatch-{}", self.id))
            .connection_timeout(self.timing.request_timeout)
            .request_timeout(Some(self.timing.request_timeout))
            // Keep reconnecting forever in the background; polls report down meanwhile.
            .retry_on_initial_connect();
        let a = &self.config.auth;
        if let (Some(u), Some(p)) = (&a.user, &a.password) {
            opts = opts.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &a.token {
            opts = opts.token(t.clone());
        }
        let client = opts
            .connect(self.config.servers.join(","))
            .await
            .map_err(|e| PollFailure {
                kind: ErrorKind::Connect,
                message: format!("cannot connect to NATS: {e}"),
            })?;
        self.client = Some(client.clone());
        Ok(client)
    }
}

impl Poller for JetstreamPoller {
    async fn poll(&mut self) -> Result<PollData, PollFailure> {
        let client = self.connect().await?;
        if client.connection_state() != async_nats::connection::State::Connected {
            return Err(PollFailure {
                kind: ErrorKind::Connect,
                message: "not connected to NATS (reconnecting)".into(),
            });
        }
        let js = async_nats::jetstream::new(client);
        js.query_account().await.map_err(|e| PollFailure {
            kind: ErrorKind::Other,
            message: format!("cannot read JetStream account info: {e}"),
        })?;
        Ok(PollData::default())
    }
}
