//! [`BoxFuture`]: a boxed future that can be sent between threads, for the traits whose
//! implementation is chosen at run time (`Arc<dyn AccountStore>`, a token endpoint, a fleet's
//! shared pool, a strategy's slow path). Its own module, below the store, the upstream and every
//! other layer that names it, so none of them takes it from another.

use std::future::Future;
use std::pin::Pin;

/// A boxed, `Send` future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
