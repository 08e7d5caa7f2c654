// Elementwise ops. Binary ops broadcast like NumPy: shapes are right-aligned and a
// dimension of size 1 stretches to the other's size ([N, C, H, W] + [C, 1, 1] works).
// Backward sums the gradient over the broadcast dimensions.
#pragma once

#include "stn/framework/tape.h"

namespace stn {

Var add(Var a, Var b);
Var sub(Var a, Var b);
Var mul(Var a, Var b);
Var div(Var a, Var b);

Var add(Var a, float s);
Var sub(Var a, float s);
Var sub(float s, Var a);
Var mul(Var a, float s);
Var div(Var a, float s);
Var div(float s, Var a);

Var neg(Var x);
Var exp(Var x);
Var log(Var x);        // log of non-positive values gives -inf / NaN, as in IEEE arithmetic
Var sqrt(Var x);
Var pow(Var x, float exponent);
Var relu(Var x);       // sub-gradient 0 at x == 0, as PyTorch
Var sigmoid(Var x);
Var tanh(Var x);

inline Var operator+(Var a, Var b) { return add(a, b); }
inline Var operator-(Var a, Var b) { return sub(a, b); }
inline Var operator*(Var a, Var b) { return mul(a, b); }
inline Var operator/(Var a, Var b) { return div(a, b); }
inline Var operator+(Var a, float s) { return add(a, s); }
inline Var operator+(float s, Var a) { return add(a, s); }
inline Var operator-(Var a, float s) { return sub(a, s); }
inline Var operator-(float s, Var a) { return sub(s, a); }
inline Var operator*(Var a, float s) { return mul(a, s); }
inline Var operator*(float s, Var a) { return mul(a, s); }
inline Var operator/(Var a, float s) { return div(a, s); }
inline Var operator/(float s, Var a) { return div(s, a); }
inline Var operator-(Var x) { return neg(x); }

// The broadcast shape of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

}  // namespace stn
