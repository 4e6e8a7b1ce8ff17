#!/usr/bin/env python3
"""Evaluates schedule expressions with real Python and writes the fixture that
crates/rotograph/tests/schedule.rs compares the Rust schedule language against.

Usage: python3 scripts/make_schedule_fixture.py
Writes crates/rotograph/tests/fixtures/schedule_python.json.

Each case is an expression, the variables it ran with, and either the result (floats as
repr strings so that nan, inf and every bit survive JSON) or the Python exception's name.
A result that is an int beyond 64 bits is recorded as {"error": "BigInt"}: the Rust language
reports an overflow there instead.
"""

import json
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "crates", "rotograph", "tests", "fixtures", "schedule_python.json")

# The environment the schedules see: `from math import *`, the module as `math`, a few builtins.
ENV = {k: getattr(math, k) for k in dir(math) if not k.startswith("_")}
ENV["math"] = math
BUILTINS = {
    f.__name__: f for f in (abs, bool, float, int, len, max, min, round, str, sum)
}

VARSETS = [
    {"loop_i": 1, "image_i": 1, "loop_n": 4, "image_n": 100},
    {"loop_i": 3, "image_i": 17, "loop_n": 4, "image_n": 100},
    {"loop_i": 4, "image_i": 100, "loop_n": 4, "image_n": 100},
]

# Hand-written cases: operators, precedence, Python corner cases, every function.
EXPRS = r"""
7 // 2
7 / 2
-7 // 2
-7 % 3
7 % -3
-7 % -3
2 ** -1
-2 ** 2
(-2) ** 2
2 ** 3 ** 2
2 ** -2 ** -1
-2 ** -2
1 + 2 * 3
(1 + 2) * 3
10 - 3 - 2
100 / 10 / 5
2 * 3 % 4
7.5 // 2
-7.5 // 2
7.5 % 2
-7.5 % 2
7.5 % -2
-0.0 % 5
0.0 // -3
1e308 * 10
-1e308 * 10
0.1 + 0.2
1 / 3
2 ** 62
-9223372036854775807 - 1
2 ** 63
3 ** 40
10 ** 18 * 10
9223372036854775807 + 1
-9223372036854775807 - 2
abs(-9223372036854775807 - 1)
2.0 ** 0.5
(-8) ** (1/3)
(-8.0) ** 3
0 ** 0
0.0 ** 0
0 ** -1
0.0 ** -2.5
10.0 ** 400
2 ** 1023.5
1.5 ** -1074
4 ** 0.5
1 ** 1e300
(-1) ** 1e300
True + True
True * 3.5
-True
+False
not 0
not []
not [0]
not ''
not 'x'
1 and 2
0 and 2
1 or 2
0 or 0.0
0.0 or [] or 3
[] and 1
1 and 0 and 3
None_placeholder
0 < 1 < 2
0 < 2 < 1
1 < 2 > 0
1 == 1.0
1 != 1.0
1 == True
2 == True
[1, 2] == [1, 2.0]
[1, 2] < [1, 3]
[1, 2] < [1, 2, 0]
[] < [0]
'abc' < 'abd'
'a' == 'a'
'a' == 1
[1] == 1
1 < 1.5 <= 2 == 2.0
3 in [1, 2, 3]
4 not in [1, 2, 3]
'b' in 'abc'
1.0 in [1]
not 1 == 2
not 1 < 2 and 3
1 if 0 else 2 if 0 else 3
(1 if 0 else 2) if 1 else 3
1 if [] else 'x'
0.3 if loop_i < 4 else 1
max(0.1, 0.4 - 0.02 * loop_i)
min(loop_i, image_i)
[loop_i, image_i, loop_n, image_n]
loop_i / loop_n
image_i // 7
image_i % 7 == 3
[1, 2] + [3]
[0] * 3
3 * [1, 2]
[1] * -1
[1] * 0
'ab' * 3
'a' + 'b'
'ab' 'cd'
"it's"
'say "hi"'
'tab\there'
[]
[[1, 2], [3]]
[1, 'a', 2.5, True]
[1,]
str(1.0)
str(1e16)
str(1e-5)
str(0.1)
str(123456789.123)
str(-0.0)
str([1, 'a', 2.5])
str(True)
str(inf)
str(nan)
str(1e22)
str(12345678901234567.0)
len([1, 2, 3])
len('héllo')
len([])
sum([1, 2, 3])
sum([0.1, 0.2, 0.3])
sum([1, 2], 10)
sum([[1], [2]], [])
sum([])
round(2.5)
round(3.5)
round(-2.5)
round(0.5)
round(-0.5)
round(2.675, 2)
round(0.125, 2)
round(0.375, 2)
round(1.0005, 3)
round(1234.5678, -2)
round(1250.0, -2)
round(1350.0, -2)
round(-1250.0, -2)
round(1250.01, -2)
round(5e15 + 0.5)
round(1.5, 0)
round(2.5, 0)
round(-0.0)
round(7, -1)
round(15, -1)
round(25, -1)
round(-25, -1)
round(1234, 2)
round(123.456, 1)
round(123.456, 10)
round(1e300, 2)
round(inf)
round(nan)
round(inf, 2)
round(1.23456789e-5, 7)
int(-3.7)
int(3.7)
int(-0.5)
int(True)
int('  42 ')
int('-17')
int('1_000')
int('4.5')
int(inf)
int(nan)
int(1e19)
float(3)
float('1.5')
float('  -inf ')
float('nan')
float('1e-3')
float('abc')
float(True)
bool(0)
bool([0])
bool('')
abs(-3)
abs(-3.5)
abs(True)
abs(-0.0)
min(3, 1, 2)
max(3, 1, 2)
min([4, 2, 8])
max([1, 2.5, 2])
max(1, 1.0)
max(1.0, 1)
min([])
max(1)
max('a', 'b')
max(1, 'a')
min(nan, 1)
min(1, nan)
max([[1, 2], [1, 3]])
sqrt(2)
math.sqrt(2)
sqrt(-1)
sqrt(-0.0)
exp(1)
exp(710)
exp(-1000)
exp2(10)
exp2(0.5)
expm1(1e-10)
log(10)
log(8, 2)
log(100, 10)
log(0)
log(-1)
log(1, 1)
log(2, 0.5)
log(inf)
log2(8)
log2(3)
log10(1000)
log10(2)
log1p(1e-15)
log1p(-1)
cbrt(27)
cbrt(-8)
pow(2, 10)
pow(2, 0.5)
pow(0, -1)
pow(-8, 1/3)
pow(10, 400)
pow(-2, 3)
math.pow(1, nan)
sin(1)
cos(1)
tan(1)
sin(pi)
cos(pi)
asin(0.5)
acos(0.5)
atan(1)
asin(2)
atan2(1, -1)
atan2(-0.0, -1)
sinh(1)
cosh(1)
tanh(0.5)
asinh(1)
acosh(2)
acosh(0.5)
atanh(0.5)
atanh(1)
sinh(1000)
cosh(-1000)
degrees(pi)
radians(180)
degrees(1)
radians(1)
hypot(3, 4)
hypot(3, 4, 12)
hypot()
hypot(1e200, 1e200)
hypot(inf, nan)
dist([0, 0], [3, 4])
dist([1, 2, 3], [4, 5, 6])
dist([1], [1, 2])
floor(2.5)
floor(-2.5)
ceil(2.1)
ceil(-2.1)
trunc(-2.9)
floor(7)
floor(inf)
ceil(nan)
floor(1e300)
fabs(-3)
fmod(7, 3)
fmod(-7, 3)
fmod(7, -3)
fmod(5.5, inf)
fmod(1, 0)
fmod(inf, 1)
copysign(3, -0.0)
copysign(-2, 1)
remainder(7, 2)
remainder(5, 2)
remainder(-5, 2)
remainder(7.5, 2)
remainder(6, 4)
remainder(1, 0)
remainder(inf, 1)
remainder(3, inf)
modf(3.25)
modf(-3.25)
modf(-3.0)
modf(inf)
frexp(8)
frexp(0.1)
frexp(-3)
frexp(0)
frexp(5e-324)
ldexp(0.5, 4)
ldexp(1, -1074)
ldexp(1, 1024)
ldexp(1, -2000)
ldexp(3, 1020)
nextafter(1, 2)
nextafter(1, 0)
nextafter(0, -1)
nextafter(2, 2)
ulp(1)
ulp(0)
ulp(1e300)
ulp(-2)
isfinite(1)
isfinite(inf)
isinf(-inf)
isnan(nan)
isnan(1)
isclose(1, 1 + 1e-10)
isclose(1, 1.1)
isclose(1, 1.1, rel_tol=0.2)
isclose(0, 1e-10, abs_tol=1e-9)
isclose(inf, inf)
isclose(1, 2, rel_tol=-1)
erf(0)
erf(0.1)
erf(0.5)
erf(1)
erf(1.4)
erf(1.6)
erf(1.999)
erf(2.001)
erf(2.5)
erf(3)
erf(5)
erf(-0.7)
erf(-3)
erf(30)
erfc(0)
erfc(0.3)
erfc(1)
erfc(1.9)
erfc(2.1)
erfc(3)
erfc(5)
erfc(10)
erfc(20)
erfc(26.5)
erfc(27.5)
erfc(-1)
erfc(-2.5)
gamma(0.5)
gamma(1)
gamma(5)
gamma(23)
gamma(24)
gamma(0.1)
gamma(1e-5)
gamma(2.5)
gamma(7.3)
gamma(14.9)
gamma(15.1)
gamma(30.5)
gamma(100.3)
gamma(171.5)
gamma(172)
gamma(-0.5)
gamma(-1.5)
gamma(-10.3)
gamma(-170.5)
gamma(0)
gamma(-2)
gamma(-inf)
gamma(inf)
lgamma(0.5)
lgamma(1)
lgamma(2)
lgamma(3)
lgamma(10)
lgamma(0.1)
lgamma(4.5)
lgamma(14.5)
lgamma(100)
lgamma(1e10)
lgamma(1e300)
lgamma(-0.5)
lgamma(-2.5)
lgamma(-100.5)
lgamma(0)
lgamma(-3)
lgamma(inf)
factorial(0)
factorial(5)
factorial(20)
factorial(21)
factorial(-1)
factorial(5.0)
comb(5, 2)
comb(10, 0)
comb(3, 5)
comb(60, 30)
comb(66, 33)
comb(100, 50)
comb(1000000000, 2)
comb(-1, 2)
perm(5, 2)
perm(5)
perm(3, 5)
perm(20, 20)
perm(21)
gcd(12, 18)
gcd(-12, 18)
gcd(0, 0)
gcd()
gcd(12, 18, 8)
lcm(4, 6)
lcm(4, 6, 10)
lcm()
lcm(0, 5)
lcm(-4, 6)
isqrt(17)
isqrt(0)
isqrt(9223372036854775807)
isqrt(-1)
fsum([0.1] * 10)
fsum([1e100, 1.0, -1e100])
fsum([])
fsum([1, 2, 3])
fsum([inf, 1])
fsum([inf, -inf])
fsum([1e308, 1e308])
prod([1, 2, 3, 4])
prod([0.5, 4])
prod([])
prod([2, 3], start=10)
pi
e
tau
inf
-inf
nan
math.pi
math.tau * 2
math.floor(loop_i / 2)
1.5e3
.5
5.
1_000_000
1e-3
2.5E+2
0.000001
1e16
123456789012345678
"""

# Cases the Rust language deliberately reports as errors (checked separately in the tests),
# or that do not exist in Python.
SKIP = {"None_placeholder"}


def encode(v):
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        if not -(2**63) <= v < 2**63:
            return None
        return {"int": v}
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, complex):
        return None
    if isinstance(v, (list, tuple)):
        items = [encode(x) for x in v]
        if any(x is None for x in items):
            return None
        return {"list": items}
    raise TypeError(type(v))


def run(expr, variables):
    env = dict(ENV)
    env.update(variables)
    try:
        v = eval(expr, {"__builtins__": BUILTINS}, env)
    except Exception as exc:  # the fixture records which exception it was
        return {"error": type(exc).__name__}
    enc = encode(v)
    if enc is None:
        return {"error": "Complex" if isinstance(v, complex) else "BigInt"}
    return {"value": enc}


def random_exprs(rng, n):
    """Grammar-shaped arithmetic over small ints and floats: semantics of // % ** and mixing."""
    atoms = ["loop_i", "image_i", "0", "1", "2", "3", "7", "-4", "0.5", "2.5", "-1.25", "10", "1e-3"]
    ops = ["+", "-", "*", "/", "//", "%", "**", "<", "<=", "==", "!=", "and", "or"]

    def gen(depth):
        r = rng.random()
        if depth == 0 or r < 0.3:
            return rng.choice(atoms)
        if r < 0.4:
            return "-" + gen(depth - 1)
        if r < 0.45:
            return "not " + gen(depth - 1)
        if r < 0.55:
            return "(" + gen(depth - 1) + ")"
        if r < 0.62:
            return gen(depth - 1) + " if " + gen(depth - 1) + " else " + gen(depth - 1)
        if r < 0.7:
            f = rng.choice(["abs", "round", "int", "float", "floor", "ceil", "sqrt", "sin", "exp"])
            return f + "(" + gen(depth - 1) + ")"
        if r < 0.75:
            return rng.choice(["min", "max"]) + "(" + gen(depth - 1) + ", " + gen(depth - 1) + ")"
        op = rng.choice(ops)
        # Small exponents only: Python would happily compute 100 ** 10 ** 7.
        right = rng.choice(["2", "3", "0.5", "-1", "-2"]) if op == "**" else gen(depth - 1)
        return gen(depth - 1) + " " + op + " " + right

    return [gen(4) for _ in range(n)]


def main():
    rng = random.Random(20261124)
    exprs = [e.strip() for e in EXPRS.strip().splitlines() if e.strip() and e.strip() not in SKIP]
    exprs += random_exprs(rng, 400)
    cases = []
    for expr in exprs:
        uses_vars = any(name in expr for name in VARSETS[0])
        for variables in VARSETS if uses_vars else VARSETS[:1]:
            case = {"expr": expr, "vars": variables}
            case.update(run(expr, variables))
            cases.append(case)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"python": sys.version.split()[0], "cases": cases}, f, indent=0, ensure_ascii=False)
        f.write("\n")
    print(f"{len(cases)} cases -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
