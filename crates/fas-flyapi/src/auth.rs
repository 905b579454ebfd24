//! `Authorization` header construction, exactly as fly-go's `tokens` package builds it.
//!
//! Pure functions: they never log and their results are only ever put into a header marked
//! sensitive by the client.

/// Prefixes (before the first `_`) that mark a Fly macaroon token.
const MACAROON_PREFIXES: [&str; 3] = ["fm1r", "fm1a", "fm2"];

/// A token string split into Fly macaroons and other (OAuth/user) tokens.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Tokens {
    macaroons: Vec<String>,
    user_tokens: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("macaroons", &self.macaroons.len())
            .field("user_tokens", &self.user_tokens.len())
            .finish()
    }
}

impl Tokens {
    /// Parses a token string the way fly-go's `tokens.Parse` does: strip any leading
    /// `Bearer `/`FlyV1 ` scheme (case-insensitively, repeatedly), split on commas, trim each
    /// piece and classify it by its prefix (`fm1r_`, `fm1a_`, `fm2_` are macaroons).
    ///
    /// Unlike fly-go, empty pieces (`"a,,b"`, a trailing comma) are dropped.
    pub fn parse(token: &str) -> Tokens {
        let token = strip_authorization_scheme(token);
        let mut out = Tokens::default();
        for piece in token.split(',') {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            let prefix = piece.split_once('_').map_or("", |(p, _)| p);
            if MACAROON_PREFIXES.contains(&prefix) {
                out.macaroons.push(piece.to_owned());
            } else {
                out.user_tokens.push(piece.to_owned());
            }
        }
        out
    }

    /// True when no token at all was found.
    pub fn is_empty(&self) -> bool {
        self.macaroons.is_empty() && self.user_tokens.is_empty()
    }

    /// Number of macaroon tokens.
    pub fn macaroon_count(&self) -> usize {
        self.macaroons.len()
    }

    /// Number of OAuth/user tokens.
    pub fn user_token_count(&self) -> usize {
        self.user_tokens.len()
    }

    /// The Machines API ("flaps") header value (fly-go `FlapsHeader`): `FlyV1 <macaroons>` when
    /// any macaroon is present (user tokens are then dropped), otherwise `Bearer <user tokens>`.
    /// `None` when there is no token.
    pub fn flaps_header(&self) -> Option<String> {
        if !self.macaroons.is_empty() {
            Some(format!("FlyV1 {}", self.macaroons.join(",")))
        } else if !self.user_tokens.is_empty() {
            Some(format!("Bearer {}", self.user_tokens.join(",")))
        } else {
            None
        }
    }

    /// The GraphQL header value (fly-go `GraphQLHeader`): macaroons and user tokens together,
    /// after `FlyV1 ` when any macaroon is present, else after `Bearer `. `None` when there is
    /// no token.
    pub fn graphql_header(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let scheme = if self.macaroons.is_empty() {
            "Bearer"
        } else {
            "FlyV1"
        };
        let all: Vec<&str> = self
            .macaroons
            .iter()
            .chain(self.user_tokens.iter())
            .map(String::as_str)
            .collect();
        Some(format!("{scheme} {}", all.join(",")))
    }
}

/// Strips leading `Bearer `/`FlyV1 ` schemes, case-insensitively and repeatedly, and trims
/// surrounding whitespace (fly-go `stripAuthorizationScheme`). Unlike fly-go, a lone scheme
/// word with nothing after it (`"Bearer "`) yields the empty string, not the token `Bearer`.
pub fn strip_authorization_scheme(token: &str) -> &str {
    let mut token = token.trim();
    loop {
        let Some((scheme, rest)) = token.split_once(' ') else {
            if token.eq_ignore_ascii_case("bearer") || token.eq_ignore_ascii_case("flyv1") {
                return "";
            }
            return token;
        };
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("flyv1") {
            token = rest.trim();
        } else {
            return token;
        }
    }
}

/// The Machines API `Authorization` value for a raw token string (see [`Tokens::flaps_header`]).
pub fn flaps_authorization(token: &str) -> Option<String> {
    Tokens::parse(token).flaps_header()
}

/// The GraphQL `Authorization` value for a raw token string (see [`Tokens::graphql_header`]).
pub fn graphql_authorization(token: &str) -> Option<String> {
    Tokens::parse(token).graphql_header()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_token_gets_bearer() {
        assert_eq!(
            flaps_authorization("abc123").as_deref(),
            Some("Bearer abc123")
        );
        assert_eq!(
            graphql_authorization("abc123").as_deref(),
            Some("Bearer abc123")
        );
    }

    #[test]
    fn macaroon_gets_flyv1_and_prefixes_are_stripped_repeatedly() {
        for raw in [
            "fm2_abc",
            "FlyV1 fm2_abc",
            "Bearer FlyV1 fm2_abc",
            "bearer flyv1 fm2_abc",
            "  BEARER   Bearer FLYV1 fm2_abc  ",
        ] {
            assert_eq!(
                flaps_authorization(raw).as_deref(),
                Some("FlyV1 fm2_abc"),
                "{raw}"
            );
        }
    }

    #[test]
    fn several_macaroons_are_joined_and_user_tokens_dropped_for_flaps() {
        let raw = "FlyV1 fm1r_one, fm1a_two ,oauthtok,fm2_three";
        assert_eq!(
            flaps_authorization(raw).as_deref(),
            Some("FlyV1 fm1r_one,fm1a_two,fm2_three")
        );
        assert_eq!(
            graphql_authorization(raw).as_deref(),
            Some("FlyV1 fm1r_one,fm1a_two,fm2_three,oauthtok")
        );
    }

    #[test]
    fn only_known_prefixes_are_macaroons() {
        let t = Tokens::parse("fm3_x,fm1_y,fm2x_z,fm2_ok");
        assert_eq!(t.macaroon_count(), 1);
        assert_eq!(t.user_token_count(), 3);
        assert_eq!(
            graphql_authorization("fm3_x,fm2_ok").as_deref(),
            Some("FlyV1 fm2_ok,fm3_x")
        );
        assert_eq!(
            graphql_authorization("u1,u2").as_deref(),
            Some("Bearer u1,u2")
        );
    }

    #[test]
    fn empty_tokens_give_none() {
        for raw in ["", "   ", "Bearer ", "FlyV1 ,", ",,"] {
            assert_eq!(flaps_authorization(raw), None, "{raw:?}");
            assert_eq!(graphql_authorization(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn a_scheme_like_word_that_is_not_a_scheme_is_kept() {
        assert_eq!(strip_authorization_scheme("Token abc"), "Token abc");
        assert_eq!(strip_authorization_scheme("Bearerx abc"), "Bearerx abc");
    }

    #[test]
    fn debug_does_not_show_tokens() {
        let t = Tokens::parse("fm2_CANARY-SECRET,CANARY-OAUTH");
        let shown = format!("{t:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
    }
}
