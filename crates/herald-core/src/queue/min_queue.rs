//! [`MinQueue`]: a priority queue (smallest first) for items that mostly
//! arrive in order.
//!
//! Returns come back in about the order events were delivered, deadlines
//! in about the order they were set, due times in about the order they
//! were asked for. An item not smaller than the last in-order one goes to
//! the back of a sorted deque in O(1); only a straggler pays a binary
//! heap's O(log n). A storm of a million in-order returns therefore costs a
//! deque append and pop each, with no sift through a million-item heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Smallest-first queue: a sorted deque for in-order pushes and a heap for
/// the rest. Invariant: `sorted` is non-decreasing.
#[derive(Debug, Clone)]
pub(crate) struct MinQueue<T: Ord> {
    sorted: VecDeque<T>,
    heap: BinaryHeap<Reverse<T>>,
}

impl<T: Ord> Default for MinQueue<T> {
    fn default() -> Self {
        MinQueue {
            sorted: VecDeque::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord> MinQueue<T> {
    pub fn push(&mut self, item: T) {
        if self.sorted.back().is_none_or(|last| *last <= item) {
            self.sorted.push_back(item);
        } else {
            self.heap.push(Reverse(item));
        }
    }

    /// Whether the smallest item is in the deque (else in the heap).
    fn min_is_sorted(&self) -> Option<bool> {
        match (self.sorted.front(), self.heap.peek()) {
            (Some(a), Some(Reverse(b))) => Some(a <= b),
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (None, None) => None,
        }
    }

    pub fn peek(&self) -> Option<&T> {
        match self.min_is_sorted()? {
            true => self.sorted.front(),
            false => self.heap.peek().map(|Reverse(t)| t),
        }
    }

    pub fn pop(&mut self) -> Option<T> {
        match self.min_is_sorted()? {
            true => self.sorted.pop_front(),
            false => self.heap.pop().map(|Reverse(t)| t),
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len() + self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty() && self.heap.is_empty()
    }

    /// Every item, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.sorted
            .iter()
            .chain(self.heap.iter().map(|Reverse(t)| t))
    }

    /// Keeps the items `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.sorted.retain(&mut keep);
        self.heap.retain(|Reverse(t)| keep(t));
    }

    /// Takes every item, in no particular order.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.sorted
            .drain(..)
            .chain(self.heap.drain().map(|Reverse(t)| t))
    }

    /// Every item, in no particular order.
    pub fn into_iter_unordered(self) -> impl Iterator<Item = T> {
        self.sorted
            .into_iter()
            .chain(self.heap.into_iter().map(|Reverse(t)| t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Pops come out sorted whatever the push order, and the deque
        /// stays sorted.
        #[test]
        fn pops_are_sorted(ops in proptest::collection::vec(prop::option::of(0u16..50), 0..300)) {
            let mut q = MinQueue::default();
            let mut model: Vec<u16> = Vec::new();
            for op in ops {
                match op {
                    Some(n) => { q.push(n); model.push(n); }
                    None => {
                        model.sort_unstable();
                        let want = if model.is_empty() { None } else { Some(model.remove(0)) };
                        prop_assert_eq!(q.peek().copied(), want);
                        prop_assert_eq!(q.pop(), want);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert!(q.sorted.iter().zip(q.sorted.iter().skip(1)).all(|(a, b)| a <= b));
            }
        }
    }
}
