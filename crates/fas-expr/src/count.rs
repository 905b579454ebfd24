//! Count semantics, in one place.

use crate::ExprError;

/// Turns the value of an expression into a machine count.
///
/// - NaN is [`ExprError::NaN`] ("expression returned NaN").
/// - ±Inf is [`ExprError::Infinite`] ("expression returned Inf" / "expression returned -Inf"),
///   even -Inf: it always means a broken metric or a division by zero, never "zero machines".
/// - Otherwise the value is rounded half away from zero (`2.5` → 3, `2.4` → 2, `-2.5` → -3).
/// - A negative result counts as 0.
/// - A result above `u32::MAX` is [`ExprError::TooLarge`]. This is an error rather than
///   saturation on purpose: a count of four billion machines is always a bug (a wrong unit, a
///   missing division), and saturating would turn it into an absurd fleet instead of a loud error.
///
/// ```
/// use fas_expr::{to_count, ExprError};
/// assert_eq!(to_count(2.6), Ok(3));
/// assert_eq!(to_count(2.5), Ok(3));
/// assert_eq!(to_count(-2.0), Ok(0));
/// assert_eq!(to_count(f64::NAN), Err(ExprError::NaN));
/// assert_eq!(to_count(f64::INFINITY).unwrap_err().to_string(), "expression returned Inf");
/// assert!(matches!(to_count(5e9), Err(ExprError::TooLarge { .. })));
/// ```
pub fn to_count(value: f64) -> Result<u32, ExprError> {
    if value.is_nan() {
        return Err(ExprError::NaN);
    }
    if value.is_infinite() {
        return Err(ExprError::Infinite {
            negative: value < 0.0,
        });
    }
    // f64::round rounds half away from zero.
    let rounded = value.round();
    if rounded <= 0.0 {
        return Ok(0);
    }
    if rounded > f64::from(u32::MAX) {
        return Err(ExprError::TooLarge { value: rounded });
    }
    // In range [1, u32::MAX] and integral: the cast is exact.
    Ok(rounded as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        for (value, want) in [
            (0.0, 0),
            (0.4, 0),
            (0.5, 1),
            (1.0, 1),
            (2.4999, 2),
            (2.5, 3),
            (2.6, 3),
            (3.5, 4),
            (1e9, 1_000_000_000),
        ] {
            assert_eq!(to_count(value), Ok(want), "to_count({value})");
        }
    }

    #[test]
    fn negative_counts_as_zero() {
        for value in [-0.0, -0.4, -0.5, -2.0, -2.6, -1e300, f64::MIN] {
            assert_eq!(to_count(value), Ok(0), "to_count({value})");
        }
    }

    #[test]
    fn nan_and_infinities_are_distinct_errors() {
        assert_eq!(to_count(f64::NAN), Err(ExprError::NaN));
        assert_eq!(to_count(-f64::NAN), Err(ExprError::NaN));
        assert_eq!(
            to_count(f64::INFINITY),
            Err(ExprError::Infinite { negative: false })
        );
        assert_eq!(
            to_count(f64::NEG_INFINITY),
            Err(ExprError::Infinite { negative: true })
        );
        assert_eq!(ExprError::NaN.to_string(), "expression returned NaN");
        assert_eq!(
            ExprError::Infinite { negative: false }.to_string(),
            "expression returned Inf"
        );
        assert_eq!(
            ExprError::Infinite { negative: true }.to_string(),
            "expression returned -Inf"
        );
    }

    #[test]
    fn above_u32_max_is_an_error_not_saturation() {
        let max = f64::from(u32::MAX);
        assert_eq!(to_count(max), Ok(u32::MAX));
        assert_eq!(to_count(max + 0.4), Ok(u32::MAX));
        assert_eq!(
            to_count(max + 0.5),
            Err(ExprError::TooLarge { value: max + 1.0 })
        );
        assert_eq!(
            to_count(1e300).unwrap_err().to_string(),
            format!(
                "expression returned {}, more than the largest machine count 4294967295",
                1e300
            )
        );
        assert!(matches!(
            to_count(f64::MAX),
            Err(ExprError::TooLarge { .. })
        ));
    }
}
