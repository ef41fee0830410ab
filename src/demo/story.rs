//! The flash-sale story at speed 1: times in seconds, rates in messages/second.
//! At speed S every time is divided by S and every rate multiplied by S, so the
//! story keeps its shape (and its message counts) in less time.

/// Length of the whole story.
pub const LENGTH: f64 = 180.0;
/// Normal order rate, and the spike.
pub const BASE_RATE: f64 = 20.0;
pub const SPIKE_RATE: f64 = 160.0;
pub const SPIKE_FROM: f64 = 30.0;
pub const SPIKE_TO: f64 = 90.0;
/// email-service is down during this interval.
pub const EMAIL_DOWN_FROM: f64 = 20.0;
pub const EMAIL_DOWN_TO: f64 = 100.0;
/// Partitions of orders.created.
pub const PARTITIONS: i32 = 4;
/// analytics runs this many consumers, each this fast: too slow for the spike.
pub const ANALYTICS_CONSUMERS: u32 = 2;
pub const ANALYTICS_RATE_EACH: f64 = 25.0;
/// JetStream: orders shipped at this rate, picked by a slower consumer.
pub const JS_RATE: f64 = 10.0;
pub const JS_CONSUME_RATE: f64 = 4.0;

/// During the flash sale, one order in this many fails payment-service's
/// validation and is parked in the dead-letter topic.
pub const DEAD_LETTER_EVERY: u64 = 40;
pub const DEAD_LETTER_TOPIC: &str = "orders.created.dlq";

/// Orders per second at story time `t`.
pub fn order_rate(t: f64) -> f64 {
    if (SPIKE_FROM..SPIKE_TO).contains(&t) {
        SPIKE_RATE
    } else {
        BASE_RATE
    }
}
