//! What a handler may return, and the shapes a success callback may take.

use crate::error::BoxError;

/// What a handler returns: `()` (always a success), or `Result<V, E>`, whose `Ok(v)` goes
/// to the success callback and whose `Err(e)` goes to the failure callback as
/// [`Failure::Handler`](crate::Failure::Handler).
pub trait HandlerResult: Send + 'static {
    /// The value a success hands to the success callback (`()` for `()` handlers).
    type Value: Send + 'static;

    /// Splits the result.
    fn into_result(self) -> Result<Self::Value, BoxError>;
}

impl HandlerResult for () {
    type Value = ();

    #[inline]
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<V, E> HandlerResult for Result<V, E>
where
    V: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    type Value = V;

    #[inline]
    fn into_result(self) -> Result<V, BoxError> {
        self.map_err(Into::into)
    }
}

/// A success callback: `FnMut()` for handlers whose success carries no value (as Pyventus
/// calls it with no argument when the result is `None`), or `FnMut(V)`.
///
/// The second type parameter only tells the two shapes apart; it is inferred.
pub trait OnSuccess<V, M>: Send + 'static {
    /// Calls the callback.
    fn on_success(&mut self, value: V);
}

/// Marker: a success callback that takes no argument.
#[derive(Debug)]
pub enum NoArg {}

/// Marker: a success callback that takes the value.
#[derive(Debug)]
pub enum WithValue {}

impl<F> OnSuccess<(), NoArg> for F
where
    F: FnMut() + Send + 'static,
{
    fn on_success(&mut self, _value: ()) {
        self()
    }
}

impl<V, F> OnSuccess<V, WithValue> for F
where
    F: FnMut(V) + Send + 'static,
{
    fn on_success(&mut self, value: V) {
        self(value)
    }
}
