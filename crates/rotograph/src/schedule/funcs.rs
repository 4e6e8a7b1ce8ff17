//! The functions and constants: everything in Python's `math` module (3.11) plus the
//! builtins `abs bool float int len max min round str sum`. Each returns its error as a
//! message; the evaluator adds the function name and column.

use super::eval::{arith, check_size, overflow, Budget};
use super::parser::ArOp;
use super::special;
use super::value::{float_repr, py_cmp, Value};
use std::cmp::Ordering;
use std::f64::consts;

/// Implementation: positional arguments, keyword arguments (in `FnDef::kwargs` order) and the
/// evaluation budget.
pub(crate) type Imp = fn(&[Value], &[Option<Value>], &mut Budget) -> Result<Value, String>;

/// A callable function.
pub(crate) struct FnDef {
    /// Name as written.
    pub name: &'static str,
    /// Fewest positional arguments.
    pub min: usize,
    /// Most positional arguments (`None`: any number).
    pub max: Option<usize>,
    /// Accepted keyword arguments.
    pub kwargs: &'static [&'static str],
    /// Signature for arity errors.
    pub signature: &'static str,
    /// Part of the `math` module (reachable as `math.NAME`).
    pub math: bool,
    pub imp: Imp,
}

impl std::fmt::Debug for FnDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}()", self.name)
    }
}

/// The `math` constants.
pub(crate) fn constant(name: &str) -> Option<f64> {
    Some(match name {
        "pi" => consts::PI,
        "e" => consts::E,
        "tau" => consts::TAU,
        "inf" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => return None,
    })
}

/// The function called `name`; `math_only` restricts to the `math` module (`math.NAME`).
pub(crate) fn lookup(name: &str, math_only: bool) -> Option<&'static FnDef> {
    FUNCS
        .iter()
        .find(|d| d.name == name && (d.math || !math_only))
}

/// Names of all functions, for documentation and tests.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCS.iter().map(|d| d.name)
}

type R = Result<Value, String>;

fn num(v: &Value) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("expected a number, got '{}'", v.type_name()))
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Float(f) => Err(format!("expected an integer, got float {}", float_repr(*f))),
        _ => v
            .as_int()
            .ok_or_else(|| format!("expected an integer, got '{}'", v.type_name())),
    }
}

fn list(v: &Value) -> Result<&[Value], String> {
    match v {
        Value::List(l) => Ok(l),
        _ => Err(format!("expected a list, got '{}'", v.type_name())),
    }
}

fn domain() -> String {
    "math domain error: the argument is outside the function's domain".into()
}

fn range_error() -> String {
    "math range error: the result is too large for a float".into()
}

/// CPython's checks around a libm call: NaN from non-NaN input is a domain error; infinity
/// from finite input a range error when the function can overflow, else a domain error.
fn checked(r: f64, inputs: &[f64], can_overflow: bool) -> R {
    if r.is_nan() && !inputs.iter().any(|x| x.is_nan()) {
        return Err(domain());
    }
    if r.is_infinite() && inputs.iter().all(|x| x.is_finite()) {
        return Err(if can_overflow {
            range_error()
        } else {
            domain()
        });
    }
    Ok(Value::Float(r))
}

fn f1(a: &[Value], f: fn(f64) -> f64, can_overflow: bool) -> R {
    let x = num(&a[0])?;
    checked(f(x), &[x], can_overflow)
}

fn f2(a: &[Value], f: fn(f64, f64) -> f64, can_overflow: bool) -> R {
    let (x, y) = (num(&a[0])?, num(&a[1])?);
    checked(f(x, y), &[x, y], can_overflow)
}

/// A float to an int for floor/ceil/trunc/round/int.
pub(crate) fn float_to_int(f: f64) -> R {
    if f.is_nan() {
        return Err("cannot convert float NaN to integer".into());
    }
    if f.is_infinite() {
        return Err("cannot convert float infinity to integer".into());
    }
    // i64 covers [-2^63, 2^63); both bounds are exact floats.
    let two63 = -(i64::MIN as f64);
    if !(-two63..two63).contains(&f) {
        return Err(overflow());
    }
    Ok(Value::Int(f as i64))
}

fn to_int_with(v: &Value, f: fn(f64) -> f64) -> R {
    match v {
        Value::Float(x) => float_to_int(f(*x)),
        _ => Ok(Value::Int(int(v)?)),
    }
}

fn log_of(x: f64) -> Result<f64, String> {
    if x.is_nan() {
        return Ok(x);
    }
    if x <= 0.0 {
        return Err("math domain error: log of a number <= 0".into());
    }
    Ok(x.ln())
}

fn log(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let num_ = log_of(num(&a[0])?)?;
    if a.len() == 1 {
        return Ok(Value::Float(num_));
    }
    let den = log_of(num(&a[1])?)?;
    if den == 0.0 {
        return Err("float division by zero (log base 1)".into());
    }
    Ok(Value::Float(num_ / den))
}

fn log_base(a: &[Value], f: fn(f64) -> f64) -> R {
    let x = num(&a[0])?;
    log_of(x)?;
    Ok(Value::Float(f(x)))
}

fn gcd2(a: i64, b: i64) -> Result<i64, String> {
    let (mut x, mut y) = (a.unsigned_abs(), b.unsigned_abs());
    while y != 0 {
        (x, y) = (y, x % y);
    }
    i64::try_from(x).map_err(|_| overflow())
}

fn gcd(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let mut g = 0;
    for v in a {
        g = gcd2(g, int(v)?)?;
    }
    Ok(Value::Int(g))
}

fn lcm(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let mut l: i64 = 1;
    for v in a {
        let x = int(v)?;
        if x == 0 || l == 0 {
            l = 0;
            continue;
        }
        let g = gcd2(l, x)?;
        l = (l / g)
            .checked_mul(x)
            .and_then(i64::checked_abs)
            .ok_or_else(overflow)?;
    }
    Ok(Value::Int(l))
}

fn non_negative(v: &Value, what: &str) -> Result<i64, String> {
    let n = int(v)?;
    if n < 0 {
        return Err(format!("{what} must be a non-negative integer"));
    }
    Ok(n)
}

fn factorial(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let n = non_negative(&a[0], "the argument")?;
    let mut f: i64 = 1;
    for k in 2..=n {
        f = f.checked_mul(k).ok_or_else(overflow)?;
    }
    Ok(Value::Int(f))
}

fn comb(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let n = non_negative(&a[0], "n")?;
    let k = non_negative(&a[1], "k")?;
    if k > n {
        return Ok(Value::Int(0));
    }
    let k = k.min(n - k);
    let mut c: i128 = 1;
    // C(n, i+1) = C(n, i) (n - i) / (i + 1), exact at every step; overflow ends the loop
    // within 63 steps since C(n, i) >= 2^i for i <= n/2.
    for i in 0..i128::from(k) {
        c = c * (i128::from(n) - i) / (i + 1);
        if c > i128::from(i64::MAX) {
            return Err(overflow());
        }
    }
    Ok(Value::Int(c as i64))
}

fn perm(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let n = non_negative(&a[0], "n")?;
    let k = match a.get(1) {
        Some(v) => non_negative(v, "k")?,
        None => n,
    };
    if k > n {
        return Ok(Value::Int(0));
    }
    let mut p: i64 = 1;
    for i in 0..k {
        p = p.checked_mul(n - i).ok_or_else(overflow)?;
    }
    Ok(Value::Int(p))
}

fn isqrt(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let n = non_negative(&a[0], "isqrt() argument")?;
    let mut r = (n as f64).sqrt() as i64;
    while r.checked_mul(r).is_none_or(|s| s > n) {
        r -= 1;
    }
    while (r + 1).checked_mul(r + 1).is_some_and(|s| s <= n) {
        r += 1;
    }
    Ok(Value::Int(r))
}

fn isclose(a: &[Value], kw: &[Option<Value>], _: &mut Budget) -> R {
    let (x, y) = (num(&a[0])?, num(&a[1])?);
    let rel = kw[0].as_ref().map(num).transpose()?.unwrap_or(1e-9);
    let abs = kw[1].as_ref().map(num).transpose()?.unwrap_or(0.0);
    if rel < 0.0 || abs < 0.0 {
        return Err("tolerances must be non-negative".into());
    }
    if x == y {
        return Ok(Value::Bool(true));
    }
    if x.is_infinite() || y.is_infinite() {
        return Ok(Value::Bool(false));
    }
    let d = (y - x).abs();
    Ok(Value::Bool(
        d <= (rel * y).abs() || d <= (rel * x).abs() || d <= abs,
    ))
}

fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (x, bias) = if x.abs() < f64::MIN_POSITIVE {
        (x * 2f64.powi(54), -54)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1022;
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, exp + bias)
}

fn ldexp(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let x = num(&a[0])?;
    let mut e = int(&a[1])?.clamp(-4000, 4000);
    let mut r = x;
    while e != 0 && r != 0.0 && r.is_finite() {
        let step = e.clamp(-1000, 1000);
        r *= 2f64.powi(step as i32);
        e -= step;
    }
    checked(r, &[x], true)
}

fn next_after(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        return x + y;
    }
    if x == y {
        return y;
    }
    if x == 0.0 {
        return f64::from_bits(1).copysign(y);
    }
    let bits = x.to_bits();
    let up = (y > x) == (x > 0.0);
    f64::from_bits(if up { bits + 1 } else { bits - 1 })
}

fn ulp(x: f64) -> f64 {
    if !x.is_finite() {
        return x.abs();
    }
    let x = x.abs();
    if x == f64::MAX {
        return x - next_after(x, f64::NEG_INFINITY);
    }
    next_after(x, f64::INFINITY) - x
}

fn remainder(a: &[Value], _: &[Option<Value>], _: &mut Budget) -> R {
    let (x, y) = (num(&a[0])?, num(&a[1])?);
    if x.is_nan() || y.is_nan() {
        return Ok(Value::Float(f64::NAN));
    }
    if x.is_infinite() || y == 0.0 {
        return Err(domain());
    }
    if y.is_infinite() {
        return Ok(Value::Float(x));
    }
    let (ax, ay) = (x.abs(), y.abs());
    let m = ax % ay;
    let c = ay - m;
    let r = if m < c {
        m
    } else if m > c {
        -c
    } else {
        // Exactly half-way: pick the even multiple.
        m - 2.0 * ((0.5 * (ax - m)) % ay)
    };
    Ok(Value::Float(1.0f64.copysign(x) * r))
}

fn hypot_of(xs: &[f64]) -> f64 {
    if xs.iter().any(|x| x.is_infinite()) {
        return f64::INFINITY;
    }
    if xs.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let max = xs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return 0.0;
    }
    let mut parts: Vec<f64> = xs.iter().map(|x| (x / max) * (x / max)).collect();
    parts.sort_by(f64::total_cmp);
    max * special::fsum(&parts).unwrap_or(f64::INFINITY).sqrt()
}

fn nums(items: &[Value], budget: &mut Budget) -> Result<Vec<f64>, String> {
    budget.charge(items.len())?;
    items.iter().map(num).collect()
}

fn min_max(a: &[Value], want: Ordering, budget: &mut Budget) -> R {
    let items = if a.len() == 1 {
        match &a[0] {
            Value::List(l) => l.as_slice(),
            other => {
                return Err(format!(
                    "expected a list or at least two arguments, got one '{}'",
                    other.type_name()
                ))
            }
        }
    } else {
        a
    };
    budget.charge(items.len())?;
    let Some(mut best) = items.first() else {
        return Err("the list is empty".into());
    };
    for item in &items[1..] {
        match py_cmp(item, best) {
            Ok(Some(o)) if o == want => best = item,
            Ok(_) => {}
            Err(()) => {
                return Err(format!(
                    "cannot compare '{}' with '{}'",
                    item.type_name(),
                    best.type_name()
                ))
            }
        }
    }
    Ok(best.clone())
}

fn round(a: &[Value], kw: &[Option<Value>], _: &mut Budget) -> R {
    let nd = match (a.get(1), &kw[0]) {
        (Some(_), Some(_)) => return Err("ndigits given twice".into()),
        (Some(v), None) | (None, Some(v)) => Some(v),
        (None, None) => None,
    };
    let nd = match nd {
        None => None,
        Some(v) => Some(int(v)?),
    };
    match (&a[0], nd) {
        (Value::Float(x), None) => float_to_int(x.round_ties_even()),
        (Value::Float(x), Some(n)) => Ok(Value::Float(round_digits(*x, n))),
        (v, None) => Ok(Value::Int(int(v)?)),
        (v, Some(n)) => {
            let x = int(v)?;
            if n >= 0 {
                return Ok(Value::Int(x));
            }
            if n < -18 {
                return Ok(Value::Int(0));
            }
            let p = 10i128.pow((-n) as u32);
            let (x, p2) = (i128::from(x), p);
            let q = x.div_euclid(p2);
            let r = x.rem_euclid(p2);
            let q = match (2 * r).cmp(&p2) {
                Ordering::Greater => q + 1,
                Ordering::Equal if q % 2 != 0 => q + 1,
                _ => q,
            };
            i64::try_from(q * p2)
                .map(Value::Int)
                .map_err(|_| overflow())
        }
    }
}

/// `round(x, n)` for a float: the decimal value of x rounded half-to-even at `n` digits,
/// exactly as Python does (via correctly rounded decimal conversion).
fn round_digits(x: f64, n: i64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    if n > 330 {
        return x;
    }
    if n >= 0 {
        // `{:.n}` rounds the exact binary value half-to-even, as Python's dtoa does.
        return format!("{x:.prec$}", prec = n as usize)
            .parse()
            .unwrap_or(x);
    }
    if n < -330 {
        return 0.0f64.copysign(x);
    }
    // Negative n: round the exact integer digits, using the fraction only to break ties.
    let int_digits = format!("{:.0}", x.abs().trunc());
    let keep = int_digits.len() as i64 + n;
    if keep < 0 {
        return 0.0f64.copysign(x);
    }
    let keep = keep as usize;
    let (head, tail) = int_digits.split_at(keep);
    let mut q: Vec<u8> = head.bytes().map(|b| b - b'0').collect();
    let first = tail.as_bytes()[0] - b'0';
    let rest_nonzero = tail[1..].bytes().any(|b| b != b'0') || x.fract() != 0.0;
    let last_odd = q.last().is_some_and(|d| d % 2 == 1);
    let up = first > 5 || (first == 5 && (rest_nonzero || last_odd));
    if up {
        let mut i = q.len();
        loop {
            if i == 0 {
                q.insert(0, 1);
                break;
            }
            i -= 1;
            if q[i] == 9 {
                q[i] = 0;
            } else {
                q[i] += 1;
                break;
            }
        }
    }
    let digits: String = q.iter().map(|d| char::from(b'0' + d)).collect();
    let s = format!(
        "{}{}e{}",
        if x < 0.0 { "-" } else { "" },
        if digits.is_empty() {
            "0".into()
        } else {
            digits
        },
        -n
    );
    s.parse().unwrap_or(x)
}

fn parse_int(s: &str) -> R {
    let t = s.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !body.is_empty()
        && body.chars().all(|c| c.is_ascii_digit() || c == '_')
        && !body.starts_with('_')
        && !body.ends_with('_')
        && !body.contains("__");
    if !ok {
        return Err(format!(
            "invalid literal for int(): {}",
            Value::Str(s.into()).repr()
        ));
    }
    t.replace('_', "")
        .parse()
        .map(Value::Int)
        .map_err(|_| overflow())
}

fn parse_float(s: &str) -> R {
    let t = s.trim().to_ascii_lowercase();
    let body = t.strip_prefix(['+', '-']).unwrap_or(&t);
    let neg = t.starts_with('-');
    let special = match body {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = special {
        return Ok(Value::Float(if neg { -v } else { v }));
    }
    let valid = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-' | '_'))
        && body.chars().any(|c| c.is_ascii_digit());
    match t.replace('_', "").parse::<f64>() {
        Ok(v) if valid => Ok(Value::Float(v)),
        _ => Err(format!(
            "could not convert string to float: {}",
            Value::Str(s.into()).repr()
        )),
    }
}

macro_rules! math1 {
    ($name:literal, $f:expr, $ovf:expr) => {
        FnDef {
            name: $name,
            min: 1,
            max: Some(1),
            kwargs: &[],
            signature: concat!($name, "(x)"),
            math: true,
            imp: |a, _, _| f1(a, $f, $ovf),
        }
    };
}

macro_rules! math2 {
    ($name:literal, $sig:literal, $f:expr, $ovf:expr) => {
        FnDef {
            name: $name,
            min: 2,
            max: Some(2),
            kwargs: &[],
            signature: $sig,
            math: true,
            imp: |a, _, _| f2(a, $f, $ovf),
        }
    };
}

macro_rules! def {
    ($name:literal, $min:expr, $max:expr, $kw:expr, $sig:literal, $math:expr, $imp:expr) => {
        FnDef {
            name: $name,
            min: $min,
            max: $max,
            kwargs: $kw,
            signature: $sig,
            math: $math,
            imp: $imp,
        }
    };
}

static FUNCS: &[FnDef] = &[
    // --- math: powers, logarithms, roots ---
    math1!("exp", f64::exp, true),
    math1!("exp2", f64::exp2, true),
    math1!("expm1", f64::exp_m1, true),
    math1!("sqrt", f64::sqrt, false),
    math1!("cbrt", f64::cbrt, false),
    def!("log", 1, Some(2), &[], "log(x[, base])", true, log),
    def!(
        "log2",
        1,
        Some(1),
        &[],
        "log2(x)",
        true,
        |a, _, _| log_base(a, f64::log2)
    ),
    def!("log10", 1, Some(1), &[], "log10(x)", true, |a, _, _| {
        log_base(a, f64::log10)
    }),
    def!("log1p", 1, Some(1), &[], "log1p(x)", true, |a, _, _| {
        let x = num(&a[0])?;
        if x <= -1.0 {
            return Err("math domain error: log1p of a number <= -1".into());
        }
        Ok(Value::Float(x.ln_1p()))
    }),
    def!("pow", 2, Some(2), &[], "pow(x, y)", true, |a, _, _| {
        let (x, y) = (num(&a[0])?, num(&a[1])?);
        if x == 0.0 && y < 0.0 {
            return Err(domain());
        }
        if x < 0.0 && x.is_finite() && y.is_finite() && y != y.trunc() {
            return Err(domain());
        }
        checked(x.powf(y), &[x, y], true)
    }),
    // --- trigonometry and hyperbolic functions ---
    math1!("sin", f64::sin, false),
    math1!("cos", f64::cos, false),
    math1!("tan", f64::tan, false),
    math1!("asin", f64::asin, false),
    math1!("acos", f64::acos, false),
    math1!("atan", f64::atan, false),
    math2!("atan2", "atan2(y, x)", f64::atan2, false),
    math1!("sinh", f64::sinh, true),
    math1!("cosh", f64::cosh, true),
    math1!("tanh", f64::tanh, false),
    math1!("asinh", f64::asinh, false),
    math1!("acosh", f64::acosh, false),
    math1!("atanh", f64::atanh, false),
    math1!("degrees", |x| x * (180.0 / consts::PI), true),
    math1!("radians", |x| x * (consts::PI / 180.0), false),
    def!(
        "hypot",
        0,
        None,
        &[],
        "hypot(*coordinates)",
        true,
        |a, _, b| {
            let xs = nums(a, b)?;
            Ok(Value::Float(hypot_of(&xs)))
        }
    ),
    def!("dist", 2, Some(2), &[], "dist(p, q)", true, |a, _, b| {
        let (p, q) = (nums(list(&a[0])?, b)?, nums(list(&a[1])?, b)?);
        if p.len() != q.len() {
            return Err("both points must have the same number of dimensions".into());
        }
        let d: Vec<f64> = p.iter().zip(&q).map(|(x, y)| x - y).collect();
        Ok(Value::Float(hypot_of(&d)))
    }),
    // --- rounding and float manipulation ---
    def!("floor", 1, Some(1), &[], "floor(x)", true, |a, _, _| {
        to_int_with(&a[0], f64::floor)
    }),
    def!("ceil", 1, Some(1), &[], "ceil(x)", true, |a, _, _| {
        to_int_with(&a[0], f64::ceil)
    }),
    def!("trunc", 1, Some(1), &[], "trunc(x)", true, |a, _, _| {
        to_int_with(&a[0], f64::trunc)
    }),
    math1!("fabs", f64::abs, false),
    math2!(
        "fmod",
        "fmod(x, y)",
        |x: f64, y: f64| if y.is_infinite() && x.is_finite() {
            x
        } else {
            x % y
        },
        false
    ),
    math2!("copysign", "copysign(x, y)", f64::copysign, false),
    def!(
        "remainder",
        2,
        Some(2),
        &[],
        "remainder(x, y)",
        true,
        remainder
    ),
    def!("modf", 1, Some(1), &[], "modf(x)", true, |a, _, _| {
        let x = num(&a[0])?;
        let (f, i) = if x.is_infinite() {
            (0.0f64.copysign(x), x)
        } else {
            ((x - x.trunc()).copysign(x), x.trunc())
        };
        Ok(Value::List(vec![Value::Float(f), Value::Float(i)]))
    }),
    def!("frexp", 1, Some(1), &[], "frexp(x)", true, |a, _, _| {
        let (m, e) = frexp(num(&a[0])?);
        Ok(Value::List(vec![Value::Float(m), Value::Int(e)]))
    }),
    def!("ldexp", 2, Some(2), &[], "ldexp(x, i)", true, ldexp),
    def!(
        "nextafter",
        2,
        Some(2),
        &[],
        "nextafter(x, y)",
        true,
        |a, _, _| { Ok(Value::Float(next_after(num(&a[0])?, num(&a[1])?))) }
    ),
    def!("ulp", 1, Some(1), &[], "ulp(x)", true, |a, _, _| Ok(
        Value::Float(ulp(num(&a[0])?))
    )),
    // --- classification ---
    def!(
        "isfinite",
        1,
        Some(1),
        &[],
        "isfinite(x)",
        true,
        |a, _, _| Ok(Value::Bool(num(&a[0])?.is_finite()))
    ),
    def!("isinf", 1, Some(1), &[], "isinf(x)", true, |a, _, _| Ok(
        Value::Bool(num(&a[0])?.is_infinite())
    )),
    def!("isnan", 1, Some(1), &[], "isnan(x)", true, |a, _, _| Ok(
        Value::Bool(num(&a[0])?.is_nan())
    )),
    def!(
        "isclose",
        2,
        Some(2),
        &["rel_tol", "abs_tol"],
        "isclose(a, b, *, rel_tol=1e-09, abs_tol=0.0)",
        true,
        isclose
    ),
    // --- special functions ---
    math1!("erf", special::erf, false),
    math1!("erfc", special::erfc, false),
    def!("gamma", 1, Some(1), &[], "gamma(x)", true, |a, _, _| {
        special::gamma(num(&a[0])?)
            .map(Value::Float)
            .map_err(|domain_err| if domain_err { domain() } else { range_error() })
    }),
    def!("lgamma", 1, Some(1), &[], "lgamma(x)", true, |a, _, _| {
        special::lgamma(num(&a[0])?)
            .map(Value::Float)
            .map_err(|()| domain())
    }),
    // --- integers ---
    def!(
        "factorial",
        1,
        Some(1),
        &[],
        "factorial(n)",
        true,
        factorial
    ),
    def!("comb", 2, Some(2), &[], "comb(n, k)", true, comb),
    def!("perm", 1, Some(2), &[], "perm(n, k=None)", true, perm),
    def!("gcd", 0, None, &[], "gcd(*integers)", true, gcd),
    def!("lcm", 0, None, &[], "lcm(*integers)", true, lcm),
    def!("isqrt", 1, Some(1), &[], "isqrt(n)", true, isqrt),
    // --- sums and products ---
    def!("fsum", 1, Some(1), &[], "fsum(list)", true, |a, _, b| {
        let xs = nums(list(&a[0])?, b)?;
        special::fsum(&xs)
            .map(Value::Float)
            .map_err(|()| "intermediate overflow, or inf + -inf, in fsum".into())
    }),
    def!(
        "prod",
        1,
        Some(1),
        &["start"],
        "prod(list, *, start=1)",
        true,
        |a, kw, b| {
            let items = list(&a[0])?;
            b.charge(items.len())?;
            let mut acc = kw[0].clone().unwrap_or(Value::Int(1));
            for x in items {
                acc = arith(ArOp::Mul, &acc, x, b)?;
            }
            Ok(acc)
        }
    ),
    // --- builtins ---
    def!(
        "sum",
        1,
        Some(2),
        &["start"],
        "sum(list, start=0)",
        false,
        |a, kw, b| {
            let items = list(&a[0])?;
            b.charge(items.len())?;
            let mut acc = match (a.get(1), &kw[0]) {
                (Some(_), Some(_)) => return Err("start given twice".into()),
                (Some(v), None) | (None, Some(v)) => v.clone(),
                (None, None) => Value::Int(0),
            };
            if matches!(acc, Value::Str(_)) {
                return Err("can't sum strings: use + between them".into());
            }
            for x in items {
                acc = arith(ArOp::Add, &acc, x, b)?;
            }
            Ok(acc)
        }
    ),
    def!(
        "min",
        1,
        None,
        &[],
        "min(list) or min(a, b, ...)",
        false,
        |a, _, b| min_max(a, Ordering::Less, b)
    ),
    def!(
        "max",
        1,
        None,
        &[],
        "max(list) or max(a, b, ...)",
        false,
        |a, _, b| min_max(a, Ordering::Greater, b)
    ),
    def!(
        "abs",
        1,
        Some(1),
        &[],
        "abs(x)",
        false,
        |a, _, _| match &a[0] {
            Value::Float(f) => Ok(Value::Float(f.abs())),
            v => Ok(Value::Int(
                int(v)
                    .map_err(|_| format!("bad operand type: '{}'", v.type_name()))?
                    .checked_abs()
                    .ok_or_else(overflow)?,
            )),
        }
    ),
    def!(
        "round",
        1,
        Some(2),
        &["ndigits"],
        "round(number, ndigits=None)",
        false,
        round
    ),
    def!(
        "int",
        1,
        Some(1),
        &[],
        "int(x)",
        false,
        |a, _, _| match &a[0] {
            Value::Str(s) => parse_int(s),
            Value::List(_) => Err("expected a number or a string, got 'list'".into()),
            v => to_int_with(v, f64::trunc),
        }
    ),
    def!(
        "float",
        1,
        Some(1),
        &[],
        "float(x)",
        false,
        |a, _, _| match &a[0] {
            Value::Str(s) => parse_float(s),
            v => Ok(Value::Float(num(v)?)),
        }
    ),
    def!("bool", 1, Some(1), &[], "bool(x)", false, |a, _, _| Ok(
        Value::Bool(a[0].truthy())
    )),
    def!("str", 1, Some(1), &[], "str(x)", false, |a, _, b| {
        let s = a[0].to_string();
        check_size(s.len())?;
        b.charge(s.len())?;
        Ok(Value::Str(s))
    }),
    def!(
        "len",
        1,
        Some(1),
        &[],
        "len(list or string)",
        false,
        |a, _, _| match &a[0] {
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            Value::Str(s) => Ok(Value::Int(s.chars().count() as i64)),
            v => Err(format!("object of type '{}' has no len()", v.type_name())),
        }
    ),
];
