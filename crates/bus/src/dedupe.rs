//! Dropping redelivered envelopes: a bounded memory of recently seen ids.
//!
//! Limit: [`Deduper::new`] takes the number of ids remembered. Past it the
//! oldest id is forgotten, so a duplicate arriving after that many newer
//! envelopes is not recognised here; consumers whose effect is not naturally
//! idempotent also check state (e.g. sequence numbers) for that case.

use std::collections::{HashSet, VecDeque};

use roomcast_core::EnvelopeId;

/// Remembers the last `capacity` envelope ids.
#[derive(Debug)]
pub struct Deduper {
    capacity: usize,
    order: VecDeque<EnvelopeId>,
    seen: HashSet<EnvelopeId>,
}

impl Deduper {
    /// A deduper remembering at most `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity),
            seen: HashSet::with_capacity(capacity),
        }
    }

    /// `true` the first time an id is seen, `false` for a duplicate.
    pub fn first_time(&mut self, id: EnvelopeId) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(id);
        true
    }

    /// Forget `id`, so that its next delivery counts as the first (for an
    /// envelope whose handling failed and is to be retried).
    pub fn forget(&mut self, id: EnvelopeId) {
        if self.seen.remove(&id) {
            self.order.retain(|x| *x != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_dropped_within_capacity() {
        let mut d = Deduper::new(2);
        let (a, b, c) = (EnvelopeId::new(), EnvelopeId::new(), EnvelopeId::new());
        assert!(d.first_time(a));
        assert!(!d.first_time(a));
        assert!(d.first_time(b));
        assert!(d.first_time(c)); // forgets a
        assert!(!d.first_time(b));
        assert!(!d.first_time(c));
        assert!(d.first_time(a));
        d.forget(a);
        assert!(d.first_time(a), "a forgotten id counts as new");
    }
}
