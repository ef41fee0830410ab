//! A Kafka-protocol-aware TCP proxy for fault tests: it forwards each
//! connection to the broker frame by frame (a frame is a 4-byte big-endian
//! length and that many bytes), and can swallow the requests of one API that
//! mention a given name, so exactly those requests go unanswered and time out
//! while every other request on the same connection is answered. librdkafka
//! matches answers by correlation id, so the others are not held up.
//!
//! Used with [`super::Tansu::start_behind`]: the broker advertises the proxy's
//! port, so every client connection (bootstrap and broker) goes through it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Kafka API key of OffsetFetch.
pub const OFFSET_FETCH: i16 = 9;

#[derive(Debug, Default)]
struct Rules {
    /// (API key, bytes the request contains): swallowed.
    swallow: Vec<(i16, Vec<u8>)>,
    swallowed: u64,
}

/// See the module docs. Stops accepting when dropped.
#[derive(Debug)]
pub struct KafkaProxy {
    pub port: u16,
    rules: Arc<Mutex<Rules>>,
    stop: Arc<AtomicBool>,
}

impl KafkaProxy {
    /// A proxy on `port` (reserve it with `free_port` and start the broker
    /// behind it) to the broker on `upstream`. Connections made before the
    /// broker is up are closed at once, as a refused connection would be.
    pub fn start(port: u16, upstream: u16) -> KafkaProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy");
        let rules: Arc<Mutex<Rules>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (rules.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = broker.set_nodelay(true);
                let (c2, b2) = (
                    client.try_clone().expect("clone client"),
                    broker.try_clone().expect("clone broker"),
                );
                let r = r.clone();
                std::thread::spawn(move || requests(client, broker, &r));
                std::thread::spawn(move || answers(b2, c2));
            }
        });
        KafkaProxy { port, rules, stop }
    }

    /// From now on, requests of `api_key` that contain `needle` are never
    /// forwarded (and so never answered).
    pub fn swallow(&self, api_key: i16, needle: &str) {
        self.rules
            .lock()
            .unwrap()
            .swallow
            .push((api_key, needle.as_bytes().to_vec()));
    }

    /// Forwards everything again.
    pub fn release(&self) {
        self.rules.lock().unwrap().swallow.clear();
    }

    /// Requests swallowed so far.
    pub fn swallowed(&self) -> u64 {
        self.rules.lock().unwrap().swallowed
    }
}

impl Drop for KafkaProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Client to broker, frame by frame, applying the rules.
fn requests(mut client: TcpStream, mut broker: TcpStream, rules: &Mutex<Rules>) {
    loop {
        let mut len = [0u8; 4];
        if client.read_exact(&mut len).is_err() {
            break;
        }
        let n = usize::try_from(i32::from_be_bytes(len).max(0)).unwrap_or(0);
        let mut frame = vec![0u8; n];
        if client.read_exact(&mut frame).is_err() {
            break;
        }
        let api_key = frame
            .get(..2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .unwrap_or(-1);
        let swallow = {
            let mut r = rules.lock().unwrap();
            let hit = r.swallow.iter().any(|(key, needle)| {
                *key == api_key && frame.windows(needle.len()).any(|w| w == needle.as_slice())
            });
            if hit {
                r.swallowed += 1;
            }
            hit
        };
        if swallow {
            continue;
        }
        if broker.write_all(&len).is_err() || broker.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = broker.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

/// Broker to client, as is.
fn answers(mut broker: TcpStream, mut client: TcpStream) {
    let _ = std::io::copy(&mut broker, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = broker.shutdown(Shutdown::Both);
}
