//! `listed_enum!`: a fieldless enum declared together with `ALL`, every variant in declaration
//! order, so that the list cannot miss one (the simulator's own: it shares nothing with the
//! workspace's crates).

/// Declares the enum as written and, in an `impl`, the constant `ALL` with the attributes and
/// visibility given after it (`#[cfg(test)] const ALL;` for a list only tests use).
macro_rules! listed_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident, )+
        }
        $(#[$all_meta:meta])*
        $all_vis:vis const ALL;
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            $(#[$all_meta])*
            $all_vis const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];
        }
    };
}

pub(crate) use listed_enum;
