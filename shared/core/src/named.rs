//! Enumerations with one name per variant on the wire (statuses, event types, queues,
//! providers, payout methods), each name written once.
//!
//! [`named_enum!`] defines the enum from a list of `Variant = "wire name"` pairs and derives from
//! that one list everything that used to be written by hand beside it: `ALL` (every variant, in
//! order), `as_str`, `Display`, `FromStr` and serde (as the name). A new variant is one line;
//! `ALL`, parsing and JSON cannot miss it, and every `match` on the enum stays exhaustive.

/// Defines a fieldless enum named on the wire. See the [module documentation](self).
///
/// ```text
/// named_enum! {
///     /// A queue.
///     pub enum QueueName / UnknownQueue(32) {
///         /// Approved requests to send.
///         Dispatch = "dispatch",
///     }
/// }
/// ```
/// `UnknownQueue` is a `pub struct UnknownQueue(pub String)` error the caller defines, with its
/// own message, for `FromStr`; the refused text is kept up to the given number of characters.
/// Serde refuses with its standard "unknown variant" error, listing the names.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident / $error:ident ($keep:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($crate::named::unit(stringify!($variant))),+].len()] =
                [$($name::$variant),+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err($error(s.chars().take($keep).collect())),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                // serde's own "unknown variant" error, which the HTTP layer strips of the value
                // before echoing it (a body's values may be account numbers).
                text.parse().map_err(|_| {
                    <D::Error as ::serde::de::Error>::unknown_variant(&text, &[$($wire),+])
                })
            }
        }
    };
}

pub(crate) use named_enum;

/// One `()` per variant, to count them in a constant expression.
#[doc(hidden)]
pub const fn unit(_: &str) {}

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enumeration.
        enum Colour / UnknownColour(8) {
            Red = "red",
            DarkBlue = "dark-blue",
        }
    }

    #[derive(Debug, PartialEq, thiserror::Error)]
    #[error("`{0}` is not a colour")]
    struct UnknownColour(String);

    #[test]
    fn one_list_gives_all_names_parsing_and_json() {
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue]);
        assert_eq!(Colour::DarkBlue.as_str(), "dark-blue");
        assert_eq!(Colour::DarkBlue.to_string(), "dark-blue");
        assert_eq!("red".parse(), Ok(Colour::Red));
        assert_eq!("ultraviolet".parse::<Colour>(), Err(UnknownColour("ultravio".into())));
        assert_eq!(serde_json::to_string(&Colour::DarkBlue).unwrap(), r#""dark-blue""#);
        assert_eq!(serde_json::from_str::<Colour>(r#""red""#).unwrap(), Colour::Red);
        let e = serde_json::from_str::<Colour>(r#""green""#).unwrap_err().to_string();
        assert!(
            e.contains("unknown variant `green`, expected `red` or `dark-blue`"),
            "{e}"
        );
    }
}
