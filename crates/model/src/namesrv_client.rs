//! A typed NameServer client: the requests of [`crate::call`] sent to a list of NameServers,
//! reads failing over along the list and writes fanned out to every one (each NameServer keeps
//! its own state, as mqadmin assumes). The producer, the consumer and the admin CLI share it,
//! so the fail-over rules exist once.

use crate::call::{Call, CallError, Caller};
use rmq_protocol::SerializeType;
use rmq_remoting::RemotingClient;
use std::time::Duration;

/// NameServer requests over a [`RemotingClient`] whose NameServer list is set.
#[derive(Clone)]
pub struct NamesrvClient {
    client: RemotingClient,
    timeout: Duration,
    serialize: Option<SerializeType>,
}

impl NamesrvClient {
    /// Uses `client` (its NameServer list) with `timeout` per request.
    pub fn new(client: RemotingClient, timeout: Duration) -> Self {
        NamesrvClient {
            client,
            timeout,
            serialize: None,
        }
    }

    /// Sends requests with this header encoding (default: JSON, which every NameServer reads).
    pub fn with_serialize_type(mut self, serialize: SerializeType) -> Self {
        self.serialize = Some(serialize);
        self
    }

    /// The underlying client.
    pub fn client(&self) -> &RemotingClient {
        &self.client
    }

    /// The NameServer addresses, in the order fail-over tries them.
    pub fn addresses(&self) -> Vec<String> {
        self.client.namesrv_addresses()
    }

    fn command<C: Call>(&self, req: &C) -> rmq_protocol::RemotingCommand {
        let mut cmd = req.command();
        if let Some(t) = self.serialize {
            cmd.serialize_type = t;
        }
        cmd
    }

    /// Sends a read to one NameServer: the current one while it answers, else the next ones in
    /// turn (a connection that fails mid-request is dropped and the request goes to the next).
    /// Returns the address that answered with the outcome; a refusal is final (another
    /// NameServer would say the same), a transport failure moves on.
    pub async fn read<C: Call + Sync>(&self, req: &C) -> (String, Result<C::Output, CallError>) {
        let tries = self.client.namesrv_addresses().len().max(1);
        let mut last = (
            String::new(),
            Err(CallError::Remoting(rmq_remoting::RemotingError::NoNamesrv)),
        );
        for _ in 0..tries {
            let addr = match self.client.namesrv_connection().await {
                Ok((addr, _)) => addr,
                Err(e) => return (last.0, Err(e.into())),
            };
            match self
                .client
                .invoke_sync(&addr, self.command(req), self.timeout)
                .await
            {
                Ok(resp) => return (addr, C::output(resp)),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "NameServer request failed, trying the next one");
                    self.client.close_connection(&addr);
                    last = (addr, Err(e.into()));
                }
            }
        }
        last
    }

    /// Sends a write to every NameServer; each address with its outcome, in list order.
    pub async fn write_all<C: Call + Sync>(
        &self,
        req: &C,
    ) -> Vec<(String, Result<C::Output, CallError>)> {
        let mut out = Vec::new();
        for addr in self.client.namesrv_addresses() {
            let r = self.call_one(&addr, req).await;
            out.push((addr, r));
        }
        out
    }

    /// Sends `req` to one address.
    pub async fn call_one<C: Call + Sync>(
        &self,
        addr: &str,
        req: &C,
    ) -> Result<C::Output, CallError> {
        match self.serialize {
            None => self.client.call(addr, req, self.timeout).await,
            Some(_) => {
                let resp = self
                    .client
                    .invoke_sync(addr, self.command(req), self.timeout)
                    .await?;
                C::output(resp)
            }
        }
    }
}
