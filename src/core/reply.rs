//! How the core answers a command. Each [`Command`](super::Command) carries its own
//! [`ReplyTo`], typed for its answer, so no answer can reach the wrong question. The core
//! does not call it: it returns the answer as [`Output::Reply`](super::Output::Reply), a
//! [`Reply`] that the driver delivers once it has carried out what came before (the
//! snapshot above all). How the answer travels is the asker's business: the node's handle
//! wraps a channel, tests keep the value. No channel type appears here, so the core stays
//! free of any runtime.

use std::fmt;

/// Where the answer to one command goes: a callback run once with it. Dropping it unrun
/// (the core stopped) is how the asker learns that no answer will come.
pub struct ReplyTo<T>(Box<dyn FnOnce(T) + Send>);

impl<T: Send + 'static> ReplyTo<T> {
    /// Answers by calling `f` with the answer.
    pub fn new(f: impl FnOnce(T) + Send + 'static) -> Self {
        Self(Box::new(f))
    }

    /// An answer nobody waits for.
    pub fn ignore() -> Self {
        Self::new(drop)
    }

    /// The answer `value`, ready for the driver to deliver.
    pub fn with(self, value: T) -> Reply {
        let Self(f) = self;
        Reply(Box::new(move || f(value)))
    }
}

impl<T> fmt::Debug for ReplyTo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplyTo<{}>", std::any::type_name::<T>())
    }
}

/// An answer on its way to the asker of a command.
pub struct Reply(Box<dyn FnOnce() + Send>);

impl Reply {
    /// Hands the answer to the asker.
    pub fn deliver(self) {
        (self.0)()
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_reaches_the_callback_only_when_delivered() {
        let (tx, rx) = std::sync::mpsc::channel();
        let reply = ReplyTo::new(move |n: u32| {
            let _ = tx.send(n);
        })
        .with(7);
        assert!(rx.try_recv().is_err(), "nothing before delivery");
        reply.deliver();
        assert_eq!(rx.try_recv(), Ok(7));
    }

    #[test]
    fn a_reply_dropped_unanswered_closes_the_askers_channel() {
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        drop(ReplyTo::new(move |n| {
            let _ = tx.send(n);
        }));
        assert!(rx.recv().is_err());
    }
}
