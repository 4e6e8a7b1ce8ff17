//! Values of the schedule language and Python's rules for comparing and printing them.

use std::cmp::Ordering;
use std::fmt;

/// The value of a schedule expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `True` / `False` (a number in arithmetic, as in Python).
    Bool(bool),
    /// A 64-bit integer (Python's are unbounded; a result beyond 64 bits is an error here).
    Int(i64),
    /// A double-precision float.
    Float(f64),
    /// A string (prompt schedules).
    Str(String),
    /// A list (`temporal_superimpose`).
    List(Vec<Value>),
}

impl Value {
    /// Python's name for the value's type (`int`, `float`, `bool`, `str`, `list`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
        }
    }

    /// Python truthiness: zero, empty string and empty list are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }

    /// The value as a float if it is a number (`bool`, `int` or `float`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as an integer if it is a `bool` or `int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// How many values this one holds, itself included (the size limit counts these).
    pub fn weight(&self) -> usize {
        match self {
            Value::List(l) => 1 + l.iter().map(Value::weight).sum::<usize>(),
            Value::Str(s) => 1 + s.len(),
            _ => 1,
        }
    }

    /// Python's `repr`: `1.0`, `1e+20`, `'text'`, `[1, 2.5]`.
    pub fn repr(&self) -> String {
        match self {
            Value::Str(s) => {
                let mut out = String::from("'");
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\'' => out.push_str("\\'"),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        c => out.push(c),
                    }
                }
                out.push('\'');
                out
            }
            other => other.to_string(),
        }
    }
}

/// Python's `str`: strings as they are, lists with `repr` items.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&float_repr(*x)),
            Value::Str(s) => f.write_str(s),
            Value::List(l) => {
                f.write_str("[")?;
                for (k, v) in l.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&v.repr())?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Python's `repr(float)`: the shortest round-trip digits, in fixed notation for exponents
/// -4..16 and `1e+20` style otherwise.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{x:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mant) = match mant.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mant),
    };
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        if exp < 0 {
            let zeros = "0".repeat((-exp - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        } else if exp + 1 >= n {
            let zeros = "0".repeat((exp + 1 - n) as usize);
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{sign}{a}.{b}")
        }
    } else {
        let (a, b) = digits.split_at(1);
        let frac = if b.is_empty() {
            String::new()
        } else {
            format!(".{b}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{a}{frac}e{esign}{:02}", exp.abs())
    }
}

/// Exact comparison of an integer with a float (Python compares them without rounding).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO63 {
        return Some(Ordering::Less);
    }
    if f < -TWO63 {
        return Some(Ordering::Greater);
    }
    // |f| < 2^63: its integer part is exact in i64.
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)),
        o => Some(o),
    }
}

/// Numeric comparison with Python's rules; `None` when unordered (NaN) or not both numbers.
pub(crate) fn cmp_numbers(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Float(x), other) => other
            .as_int()
            .and_then(|i| cmp_int_float(i, *x))
            .map(Ordering::reverse),
        (other, Value::Float(y)) => other.as_int().and_then(|i| cmp_int_float(i, *y)),
        _ => Some(a.as_int()?.cmp(&b.as_int()?)),
    }
}

fn is_number(v: &Value) -> bool {
    matches!(v, Value::Bool(_) | Value::Int(_) | Value::Float(_))
}

/// Python `==`: numbers by value across types; other types only equal their own kind.
pub(crate) fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        _ if is_number(a) && is_number(b) => cmp_numbers(a, b) == Some(Ordering::Equal),
        _ => false,
    }
}

/// Python ordering (`<` and friends). `Ok(None)` is an unordered pair (NaN); `Err` a pair of
/// types that cannot be ordered (`'<' not supported between 'str' and 'int'`).
pub(crate) fn py_cmp(a: &Value, b: &Value) -> Result<Option<Ordering>, ()> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(Some(x.cmp(y))),
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !py_eq(p, q) {
                    return py_cmp(p, q);
                }
            }
            Ok(Some(x.len().cmp(&y.len())))
        }
        _ if is_number(a) && is_number(b) => Ok(cmp_numbers(a, b)),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        for (x, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123.456, "123.456"),
            (-0.0, "-0.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(float_repr(x), s);
        }
    }

    #[test]
    fn int_float_comparison_is_exact() {
        let big = Value::Int((1 << 53) + 1);
        let f = Value::Float(9_007_199_254_740_992.0);
        assert_eq!(cmp_numbers(&big, &f), Some(Ordering::Greater));
        assert!(!py_eq(&big, &f));
        assert!(py_eq(&Value::Int(3), &Value::Float(3.0)));
        assert!(py_eq(&Value::Bool(true), &Value::Int(1)));
        assert_eq!(
            cmp_numbers(&Value::Int(2), &Value::Float(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_numbers(&Value::Int(-3), &Value::Float(-3.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp_numbers(&Value::Int(0), &Value::Float(f64::NAN)), None);
        assert_eq!(
            cmp_numbers(&Value::Int(i64::MAX), &Value::Float(f64::INFINITY)),
            Some(Ordering::Less)
        );
    }
}
