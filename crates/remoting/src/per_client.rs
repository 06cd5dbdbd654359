//! Per-client shares of a server: what all connections of one client hold together.
//!
//! Per-connection budgets bound one connection; a client that opens many connections would get
//! one budget each. Here a *client* is its source IP address (the PROXY header's source when a
//! trusted proxy sent one): the one thing a client cannot multiply at will. A client's
//! connections share a connection cap and a byte budget for requests being processed; past the
//! cap a new connection is refused, past the budget its connections are not read until some of
//! its requests finish (back-pressure on that client only). A gateway that funnels many users
//! through one address needs these raised (0 = no limit).

use crate::budget::ByteBudget;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The shares of every client with a live connection.
pub(crate) struct ClientTable {
    /// Connections one client may hold (0 = no limit).
    max_connections: usize,
    /// Bytes of one client's requests being processed at once (0 = no limit).
    request_bytes: usize,
    clients: Mutex<HashMap<IpAddr, ClientShare>>,
}

struct ClientShare {
    connections: usize,
    request_bytes: Option<Arc<ByteBudget>>,
}

/// A connection's membership of its client's share, held as long as the connection lives;
/// dropping it gives the connection back (and forgets the client with its last connection).
pub(crate) struct ClientSlot {
    table: Arc<ClientTable>,
    ip: IpAddr,
    /// The client's request byte budget, shared by its connections (`None`: unbounded).
    pub(crate) request_bytes: Option<Arc<ByteBudget>>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut m = self.table.lock();
        if let Some(share) = m.get_mut(&self.ip) {
            share.connections -= 1;
            if share.connections == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl ClientSlot {
    /// The client this slot belongs to.
    pub(crate) fn ip(&self) -> IpAddr {
        self.ip
    }
}

/// The client already holds as many connections as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyConnections {
    pub(crate) limit: usize,
}

impl ClientTable {
    pub(crate) fn new(max_connections: usize, request_bytes: usize) -> Arc<Self> {
        Arc::new(ClientTable {
            max_connections,
            request_bytes,
            clients: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, ClientShare>> {
        // Poisoning: every critical section is a counter update or an insert/remove.
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection of client `ip`: its slot, or the refusal when the client is at its cap.
    pub(crate) fn join(self: &Arc<Self>, ip: IpAddr) -> Result<ClientSlot, TooManyConnections> {
        let mut m = self.lock();
        let share = m.entry(ip).or_insert_with(|| ClientShare {
            connections: 0,
            request_bytes: (self.request_bytes > 0)
                .then(|| Arc::new(ByteBudget::new(self.request_bytes))),
        });
        if self.max_connections > 0 && share.connections >= self.max_connections {
            return Err(TooManyConnections {
                limit: self.max_connections,
            });
        }
        share.connections += 1;
        Ok(ClientSlot {
            table: self.clone(),
            ip,
            request_bytes: share.request_bytes.clone(),
        })
    }

    /// Clients with a live connection.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The client a peer address ("ip:port", or a bare ip) belongs to.
pub(crate) fn client_ip(peer: &str) -> Option<IpAddr> {
    peer.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| peer.parse::<IpAddr>())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_connections_share_one_cap_and_budget() {
        let t = ClientTable::new(2, 1024);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = t.join(a).unwrap();
        let a2 = t.join(a).unwrap();
        assert_eq!(t.join(a).err(), Some(TooManyConnections { limit: 2 }));
        // Another client is unaffected.
        let _b1 = t.join(b).unwrap();
        // One budget for both of a's connections.
        let (x, y) = (
            a1.request_bytes.clone().unwrap(),
            a2.request_bytes.clone().unwrap(),
        );
        assert!(Arc::ptr_eq(&x, &y));
        drop(a1);
        let a3 = t.join(a).unwrap();
        drop((a2, a3));
        // The last connection gone, the client is forgotten.
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn zero_means_no_limit() {
        let t = ClientTable::new(0, 0);
        let ip: IpAddr = "::1".parse().unwrap();
        let slots: Vec<_> = (0..100).map(|_| t.join(ip).unwrap()).collect();
        assert!(slots[0].request_bytes.is_none());
    }

    #[test]
    fn peers_name_their_client() {
        assert_eq!(
            client_ip("127.0.0.2:4000"),
            Some("127.0.0.2".parse().unwrap())
        );
        assert_eq!(client_ip("[::1]:4000"), Some("::1".parse().unwrap()));
        assert_eq!(client_ip("10.1.2.3"), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(client_ip("not an address"), None);
    }
}
