//! Evaluation with Python's semantics and a step budget.

use super::parser::{ArOp, CmpOp, Expr, Kind, UnOp};
use super::value::{py_cmp, py_eq, Value};
use super::{Vars, MAX_ITEMS, MAX_STEPS};
use std::cmp::Ordering;

/// An evaluation error: column and message.
pub(crate) type EvalError = (usize, String);

/// Counts evaluation work; past [`MAX_STEPS`] evaluation stops with an error.
pub(crate) struct Budget {
    left: usize,
}

impl Budget {
    pub(crate) fn new() -> Self {
        Budget { left: MAX_STEPS }
    }

    /// Spends `n` steps.
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), String> {
        if n > self.left {
            self.left = 0;
            return Err(format!(
                "the expression is too costly to evaluate (more than {MAX_STEPS} steps)"
            ));
        }
        self.left -= n;
        Ok(())
    }
}

/// Fails when a value being built would hold more than [`MAX_ITEMS`] items.
pub(crate) fn check_size(items: usize) -> Result<(), String> {
    if items > MAX_ITEMS {
        return Err(format!(
            "result too large: lists and strings are limited to {MAX_ITEMS} items"
        ));
    }
    Ok(())
}

pub(crate) fn overflow() -> String {
    "integer overflow: integers are 64-bit (±9223372036854775807); use floats (1.0) for larger values"
        .into()
}

fn type_error(op: &str, a: &Value, b: &Value) -> String {
    format!(
        "unsupported operand types for {op}: '{}' and '{}'",
        a.type_name(),
        b.type_name()
    )
}

fn zero_div() -> String {
    "division by zero".into()
}

/// Python's float floor division and modulo (CPython's `float_divmod`).
fn float_divmod(vx: f64, wx: f64) -> (f64, f64) {
    let mut m = vx % wx;
    let mut div = (vx - m) / wx;
    if m != 0.0 {
        if (wx < 0.0) != (m < 0.0) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(wx);
    }
    let floordiv = if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 {
            f + 1.0
        } else {
            f
        }
    } else {
        0.0f64.copysign(vx / wx)
    };
    (floordiv, m)
}

fn repeat(seq: &Value, n: i64, budget: &mut Budget) -> Result<Value, String> {
    let n = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
    // An empty sequence stays empty however often it is repeated (and must not loop n times).
    let empty = matches!(seq, Value::Str(s) if s.is_empty())
        || matches!(seq, Value::List(l) if l.is_empty());
    if empty || n == 0 {
        return Ok(match seq {
            Value::Str(_) => Value::Str(String::new()),
            _ => Value::List(Vec::new()),
        });
    }
    match seq {
        Value::Str(s) => {
            let len = s.len().saturating_mul(n);
            check_size(len)?;
            budget.charge(len)?;
            Ok(Value::Str(s.repeat(n)))
        }
        Value::List(l) => {
            let w = (seq.weight() - 1).saturating_mul(n).saturating_add(1);
            check_size(w)?;
            budget.charge(w)?;
            let mut out = Vec::with_capacity(l.len() * n);
            for _ in 0..n {
                out.extend(l.iter().cloned());
            }
            Ok(Value::List(out))
        }
        _ => unreachable!("repeat is called with a str or list"),
    }
}

/// `a op b` for the `+ - * / // %` operators.
pub(crate) fn arith(op: ArOp, a: &Value, b: &Value, budget: &mut Budget) -> Result<Value, String> {
    use Value::*;
    let sym = match op {
        ArOp::Add => "+",
        ArOp::Sub => "-",
        ArOp::Mul => "*",
        ArOp::Div => "/",
        ArOp::FloorDiv => "//",
        ArOp::Mod => "%",
    };
    if let (Some(x), Some(y)) = (a.as_int(), b.as_int()) {
        return Ok(Int(match op {
            ArOp::Add => x.checked_add(y).ok_or_else(overflow)?,
            ArOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
            ArOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
            ArOp::Div => {
                if y == 0 {
                    return Err(zero_div());
                }
                return Ok(Float(x as f64 / y as f64));
            }
            ArOp::FloorDiv => {
                if y == 0 {
                    return Err("integer division by zero".into());
                }
                let q = x.checked_div(y).ok_or_else(overflow)?;
                if (x % y != 0) && ((x < 0) != (y < 0)) {
                    q - 1
                } else {
                    q
                }
            }
            ArOp::Mod => {
                if y == 0 {
                    return Err("integer modulo by zero".into());
                }
                let r = x.checked_rem(y).unwrap_or(0);
                if r != 0 && ((r < 0) != (y < 0)) {
                    r + y
                } else {
                    r
                }
            }
        }));
    }
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return Ok(Float(match op {
            ArOp::Add => x + y,
            ArOp::Sub => x - y,
            ArOp::Mul => x * y,
            ArOp::Div => {
                if y == 0.0 {
                    return Err("float division by zero".into());
                }
                x / y
            }
            ArOp::FloorDiv => {
                if y == 0.0 {
                    return Err("float floor division by zero".into());
                }
                float_divmod(x, y).0
            }
            ArOp::Mod => {
                if y == 0.0 {
                    return Err("float modulo by zero".into());
                }
                float_divmod(x, y).1
            }
        }));
    }
    match (op, a, b) {
        (ArOp::Add, Str(x), Str(y)) => {
            check_size(x.len() + y.len())?;
            budget.charge(x.len() + y.len())?;
            Ok(Str(format!("{x}{y}")))
        }
        (ArOp::Add, List(x), List(y)) => {
            let w = a.weight() + b.weight();
            check_size(w)?;
            budget.charge(w)?;
            Ok(List(x.iter().chain(y).cloned().collect()))
        }
        (ArOp::Mul, Str(_) | List(_), Bool(_) | Int(_)) => {
            repeat(a, b.as_int().unwrap_or(0), budget)
        }
        (ArOp::Mul, Bool(_) | Int(_), Str(_) | List(_)) => {
            repeat(b, a.as_int().unwrap_or(0), budget)
        }
        (ArOp::Mod, Str(_), _) => Err("string formatting with % is not supported".into()),
        _ => Err(type_error(sym, a, b)),
    }
}

/// Python's `a ** b`.
pub(crate) fn power(a: &Value, b: &Value) -> Result<Value, String> {
    if let (Some(x), Some(y)) = (a.as_int(), b.as_int()) {
        if y >= 0 {
            let r = match x {
                0 => i64::from(y == 0),
                1 => 1,
                -1 => {
                    if y % 2 == 0 {
                        1
                    } else {
                        -1
                    }
                }
                _ => u32::try_from(y)
                    .ok()
                    .and_then(|e| x.checked_pow(e))
                    .ok_or_else(overflow)?,
            };
            return Ok(Value::Int(r));
        }
        if x == 0 {
            return Err("0.0 cannot be raised to a negative power".into());
        }
        return float_pow(x as f64, y as f64);
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => float_pow(x, y),
        _ => Err(type_error("** or pow()", a, b)),
    }
}

fn float_pow(x: f64, y: f64) -> Result<Value, String> {
    if x == 0.0 && y < 0.0 {
        return Err("0.0 cannot be raised to a negative power".into());
    }
    if x < 0.0 && x.is_finite() && y.is_finite() && y != y.trunc() {
        return Err(
            "a negative number cannot be raised to a fractional power (the result would be complex)"
                .into(),
        );
    }
    let r = x.powf(y);
    if r.is_infinite() && x.is_finite() && y.is_finite() {
        return Err("numerical result out of range (float overflow in **)".into());
    }
    Ok(Value::Float(r))
}

fn compare(op: CmpOp, a: &Value, b: &Value, budget: &mut Budget) -> Result<bool, String> {
    budget.charge(a.weight().min(b.weight()))?;
    let ord = |want: fn(Ordering) -> bool, sym: &str| -> Result<bool, String> {
        match py_cmp(a, b) {
            Ok(Some(o)) => Ok(want(o)),
            Ok(None) => Ok(false),
            Err(()) => Err(format!(
                "'{sym}' not supported between '{}' and '{}'",
                a.type_name(),
                b.type_name()
            )),
        }
    };
    match op {
        CmpOp::Eq => Ok(py_eq(a, b)),
        CmpOp::Ne => Ok(!py_eq(a, b)),
        CmpOp::Lt => ord(|o| o == Ordering::Less, "<"),
        CmpOp::Le => ord(|o| o != Ordering::Greater, "<="),
        CmpOp::Gt => ord(|o| o == Ordering::Greater, ">"),
        CmpOp::Ge => ord(|o| o != Ordering::Less, ">="),
        CmpOp::In | CmpOp::NotIn => {
            let found = match (a, b) {
                (_, Value::List(l)) => {
                    budget.charge(b.weight())?;
                    l.iter().any(|x| py_eq(a, x))
                }
                (Value::Str(needle), Value::Str(hay)) => {
                    budget.charge(hay.len())?;
                    hay.contains(needle.as_str())
                }
                (_, Value::Str(_)) => {
                    return Err(format!(
                        "'in <string>' requires a string on the left, not '{}'",
                        a.type_name()
                    ))
                }
                _ => {
                    return Err(format!(
                        "`in` needs a list or a string on the right, not '{}'",
                        b.type_name()
                    ))
                }
            };
            Ok(found == (op == CmpOp::In))
        }
    }
}

/// Evaluates `e` with the variables `vars`.
pub(crate) fn eval(e: &Expr, vars: &Vars, budget: &mut Budget) -> Result<Value, EvalError> {
    let at = |r: Result<Value, String>, col: usize| r.map_err(|m| (col, m));
    budget.charge(1).map_err(|m| (e.col, m))?;
    match &e.kind {
        Kind::Lit(v) => {
            budget.charge(v.weight()).map_err(|m| (e.col, m))?;
            Ok(v.clone())
        }
        Kind::Var(v) => Ok(Value::Int(vars.get(*v))),
        Kind::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut weight = 1;
            for item in items {
                let v = eval(item, vars, budget)?;
                weight += v.weight();
                check_size(weight).map_err(|m| (e.col, m))?;
                out.push(v);
            }
            Ok(Value::List(out))
        }
        Kind::Unary(op, inner) => {
            let v = eval(inner, vars, budget)?;
            let r = match (op, &v) {
                (UnOp::Not, _) => Ok(Value::Bool(!v.truthy())),
                (UnOp::Neg, Value::Float(f)) => Ok(Value::Float(-f)),
                (UnOp::Pos, Value::Float(f)) => Ok(Value::Float(*f)),
                (UnOp::Neg, Value::Int(_) | Value::Bool(_)) => v
                    .as_int()
                    .and_then(i64::checked_neg)
                    .map(Value::Int)
                    .ok_or_else(overflow),
                (UnOp::Pos, Value::Int(_) | Value::Bool(_)) => {
                    Ok(Value::Int(v.as_int().unwrap_or(0)))
                }
                (_, other) => Err(format!(
                    "bad operand type for unary {}: '{}'",
                    if *op == UnOp::Neg { "-" } else { "+" },
                    other.type_name()
                )),
            };
            at(r, e.col)
        }
        Kind::Pow(a, b) => {
            let x = eval(a, vars, budget)?;
            let y = eval(b, vars, budget)?;
            at(power(&x, &y), e.col)
        }
        Kind::Arith(first, rest) => {
            let mut acc = eval(first, vars, budget)?;
            for (op, col, operand) in rest {
                let v = eval(operand, vars, budget)?;
                acc = at(arith(*op, &acc, &v, budget), *col)?;
            }
            Ok(acc)
        }
        Kind::Compare(first, rest) => {
            let mut left = eval(first, vars, budget)?;
            for (op, col, operand) in rest {
                let right = eval(operand, vars, budget)?;
                if !compare(*op, &left, &right, budget).map_err(|m| (*col, m))? {
                    return Ok(Value::Bool(false));
                }
                left = right;
            }
            Ok(Value::Bool(true))
        }
        Kind::And(items) | Kind::Or(items) => {
            let want = matches!(e.kind, Kind::Or(_));
            let mut last = Value::Bool(want);
            for item in items {
                last = eval(item, vars, budget)?;
                if last.truthy() == want {
                    break;
                }
            }
            Ok(last)
        }
        Kind::Cond(then, cond, other) => {
            if eval(cond, vars, budget)?.truthy() {
                eval(then, vars, budget)
            } else {
                eval(other, vars, budget)
            }
        }
        Kind::Call(def, args, kwargs) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, vars, budget)?);
            }
            let mut kw: Vec<Option<Value>> = vec![None; def.kwargs.len()];
            for (name, a) in kwargs {
                let v = eval(a, vars, budget)?;
                if let Some(k) = def.kwargs.iter().position(|n| n == name) {
                    kw[k] = Some(v);
                }
            }
            let r = (def.imp)(&vals, &kw, budget).map_err(|m| format!("{}(): {m}", def.name));
            at(r, e.col)
        }
    }
}
