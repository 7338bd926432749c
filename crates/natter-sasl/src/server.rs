//! The server-side exchange state machine, common to every mechanism.

use std::fmt;

use crate::mechanism::{ChannelBindings, Mechanism};
use crate::plain::PlainPending;
use crate::scram::{AwaitingCredentials, AwaitingFinal};
use crate::{SaslError, StoredCredentials};

/// What the caller must do next in a [`ServerExchange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Look up the account `username` (already SASLprep'd authcid) and call
    /// [`ServerExchange::credentials`].
    NeedCredentials {
        /// The SASLprep'd authentication identity.
        username: String,
    },
    /// Send this challenge (raw bytes; the caller base64-encodes).
    Challenge(Vec<u8>),
    /// Authentication succeeded; send `<success>` with `additional_data`
    /// (SCRAM server-final `v=…`) if `Some`.
    Success {
        /// The authenticated (SASLprep'd) username.
        username: String,
        /// The requested authorization identity, if any. The caller must
        /// check it (e.g. equals the user's bare JID) or fail with
        /// [`SaslError::InvalidAuthzid`].
        authzid: Option<String>,
        /// Data for the `<success>` element.
        additional_data: Option<Vec<u8>>,
    },
}

enum State {
    /// Waiting for `start`.
    Start,
    /// An empty initial response was answered with an empty challenge; the
    /// next `response` is the real initial response.
    AwaitingInitial,
    PlainNeedCredentials(PlainPending),
    ScramNeedCredentials(AwaitingCredentials),
    ScramAwaitingFinal(AwaitingFinal),
    /// Succeeded or failed; nothing more is accepted.
    Finished,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "start",
            State::AwaitingInitial => "awaiting-initial-response",
            State::PlainNeedCredentials(_) | State::ScramNeedCredentials(_) => "need-credentials",
            State::ScramAwaitingFinal(_) => "awaiting-client-final",
            State::Finished => "finished",
        }
    }
}

/// One server-side SASL exchange, free of I/O.
///
/// Drive it with [`start`](Self::start), then answer each
/// [`Step::NeedCredentials`] with [`credentials`](Self::credentials) and
/// feed each client `<response>` to [`response`](Self::response) until it
/// returns [`Step::Success`] or an error. After any error the exchange is
/// finished and every further call fails.
pub struct ServerExchange {
    mechanism: Mechanism,
    bindings: ChannelBindings,
    plus_advertised: bool,
    state: State,
    test_server_nonce: Option<String>,
}

impl fmt::Debug for ServerExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerExchange")
            .field("mechanism", &self.mechanism)
            .field("plus_advertised", &self.plus_advertised)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl ServerExchange {
    /// Create an exchange for `mechanism`.
    ///
    /// `plus_advertised`: whether the server offered any -PLUS mechanism on
    /// this stream (for downgrade detection: a client GS2 flag `y` while the
    /// server advertised PLUS fails with [`SaslError::NotAuthorized`]).
    pub fn new(mechanism: Mechanism, bindings: ChannelBindings, plus_advertised: bool) -> Self {
        ServerExchange {
            mechanism,
            bindings,
            plus_advertised,
            state: State::Start,
            test_server_nonce: None,
        }
    }

    /// Use a fixed server nonce part (test vectors only).
    #[doc(hidden)]
    pub fn set_test_server_nonce(&mut self, nonce: &str) {
        self.test_server_nonce = Some(nonce.to_owned());
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Process the `<auth>` element's initial response (empty if none).
    ///
    /// An empty initial response yields `Challenge(vec![])`; the next
    /// [`response`](Self::response) is then treated as the initial response.
    pub fn start(&mut self, initial_response: &[u8]) -> Result<Step, SaslError> {
        let result = match self.state {
            State::Start => {
                if self.mechanism.is_plus() && !self.bindings.any() {
                    Err(SaslError::InvalidMechanism)
                } else if initial_response.is_empty() {
                    self.state = State::AwaitingInitial;
                    Ok(Step::Challenge(Vec::new()))
                } else {
                    self.initial(initial_response)
                }
            }
            _ => Err(self.out_of_order("start")),
        };
        self.finish_on_error(result)
    }

    /// Supply the account looked up for [`Step::NeedCredentials`]; `None`
    /// for an unknown user.
    ///
    /// SCRAM continues with a fake salt for unknown users, so they are
    /// indistinguishable until the final step fails with `NotAuthorized`.
    /// PLAIN verifies the password immediately.
    pub fn credentials(&mut self, creds: Option<&StoredCredentials>) -> Result<Step, SaslError> {
        let result = match std::mem::replace(&mut self.state, State::Finished) {
            State::PlainNeedCredentials(pending) => pending.verify(creds),
            State::ScramNeedCredentials(pending) => {
                let (next, challenge) = pending.credentials(creds, self.test_server_nonce.take());
                self.state = State::ScramAwaitingFinal(next);
                Ok(Step::Challenge(challenge))
            }
            other => {
                self.state = other;
                Err(self.out_of_order("credentials"))
            }
        };
        self.finish_on_error(result)
    }

    /// Process a client `<response>`.
    pub fn response(&mut self, data: &[u8]) -> Result<Step, SaslError> {
        let result = match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitingInitial => {
                if data.is_empty() {
                    Err(SaslError::malformed("empty initial response"))
                } else {
                    self.initial(data)
                }
            }
            State::ScramAwaitingFinal(pending) => pending.finish(data),
            other => {
                self.state = other;
                Err(self.out_of_order("response"))
            }
        };
        self.finish_on_error(result)
    }

    fn initial(&mut self, data: &[u8]) -> Result<Step, SaslError> {
        match self.mechanism.hash() {
            None => {
                let pending = PlainPending::parse(data)?;
                let username = pending.username().to_owned();
                self.state = State::PlainNeedCredentials(pending);
                Ok(Step::NeedCredentials { username })
            }
            Some(hash) => {
                let pending = AwaitingCredentials::start(
                    self.mechanism,
                    hash,
                    &self.bindings,
                    self.plus_advertised,
                    data,
                )?;
                let username = pending.username().to_owned();
                self.state = State::ScramNeedCredentials(pending);
                Ok(Step::NeedCredentials { username })
            }
        }
    }

    fn out_of_order(&self, call: &str) -> SaslError {
        SaslError::malformed(format!("unexpected {call} in state {}", self.state.name()))
    }

    fn finish_on_error(&mut self, result: Result<Step, SaslError>) -> Result<Step, SaslError> {
        if matches!(result, Err(_) | Ok(Step::Success { .. })) {
            self.state = State::Finished;
        }
        result
    }
}
