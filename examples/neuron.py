"""The paper's neuron, from formula to trained model.

Parr & Howard, "The Matrix Calculus You Need For Deep Learning", section 5: the
activation of one neuron is ``max(0, w·x + b)``, its loss over N samples the mean
squared error ``1/N Σ (target − max(0, w·xᵢ + b))²``.  matdiff writes that loss as an
expression, differentiates it symbolically, explains the derivation step by step,
and trains the neuron on scikit-learn's diabetes data with those derivatives.

Run:  python examples/neuron.py      (needs: pip install 'matdiff[train]')
"""

import numpy as np

import matdiff as md

# 1. The formula.  X holds one sample per row, so X w + b is every sample's w·x + b.
X = md.matrix("X", "N", "d")
w = md.vector("w", "d")
b = md.scalar("b")
y = md.vector("y", "N")
activation = md.relu(X @ w + b)             # max(0, w·x + b), per sample
loss = md.mean((y - activation) ** 2)        # the paper's mean squared error
print("loss          C(w, b) =", loss)

# 2. Its gradients, in matrix notation (the array layout that evaluate returns).
dw, db = md.derive(loss, "w"), md.derive(loss, "b")
print("gradient by w  ∂C/∂w =", dw)
print("gradient by b  ∂C/∂b =", db)
print()

# 3. The derivation, as the paper does it: intermediate variables, local Jacobians,
#    the chain rule.
print(md.explain(loss, "w"))
print()

# 4. The same loss from the model class: matdiff.nn.Neuron builds exactly this
#    expression, and computes the loss and both gradients with one compiled function.
neuron = md.nn.Neuron(10, seed=0)
print("Neuron's loss:", neuron.loss_expr("mse"))
fn = md.compile({"loss": loss, "grads": {"w": dw, "b": db}})
rng = np.random.default_rng(0)
Xs, ys = rng.normal(size=(5, 3)), rng.normal(size=5)
out = fn(X=Xs, y=ys, w=np.ones(3), b=np.array(0.5))
print("one compiled call: loss =", round(float(out["loss"]), 4),
      "∂C/∂w =", np.round(out["grads"]["w"], 4))
print()

# 5. Training on real data (scikit-learn's bundled diabetes set, nothing downloaded).
result = md.nn.demos.train_neuron(epochs=200, seed=0, progress=True)
print(f"test R² of the trained neuron: {result['r2']:.3f} "
      f"(predicting the mean scores {result['r2_mean']:.3f})")
print("learned w =", np.round(result["model"].params["w"], 3))
