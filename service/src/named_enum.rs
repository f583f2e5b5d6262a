//! `named_enum!`: an enum whose every value has one name, written once. The serde name (so
//! the wire and the JSON Schemas), `as_str`, `from_name`, `Display` and the list of every
//! value `ALL` all come from the one list of `Variant = "name"` pairs, so no name is spelled
//! twice and no list of values can miss one.

/// Defines a serde enum from `Variant = "name"` pairs (see the module docs). The enum must
/// derive `Serialize`/`Deserialize` (the names become its serde names).
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: [$name; { let names: &[&str] = &[$($text),+]; names.len() }] =
                [$($name::$variant),+];

            /// The value's name, as the wire spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value named `text`.
            pub fn from_name(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
