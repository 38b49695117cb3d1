"""PyTorch's "What is torch.nn really?" (nn_tutorial) in its stages: a model from raw tensors
updated by hand under torch.no_grad() (weights -= weights.grad * lr; grad.zero_()), an
nn.Module of nn.Parameters updated with `p -= p.grad * lr`, and a CNN built from
nn.Sequential with a Lambda layer and nn.AdaptiveAvgPool2d, trained by fit() with optim.SGD.
(The data comes from the caller as tensors of flattened 28x28 images.)"""
import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim


# ***** stage 1: neural net from scratch *****

def log_softmax(x):
    return x - x.exp().sum(-1).log().unsqueeze(-1)


def nll(input, target):
    return -input[range(target.shape[0]), target].mean()


def accuracy(out, yb):
    preds = torch.argmax(out, dim=1)
    return (preds == yb).float().mean()


def from_scratch(x_train, y_train, weights, bias, lr=0.5, epochs=2, bs=64):
    weights = weights.clone().requires_grad_()
    bias = bias.clone().requires_grad_()

    def model(xb):
        return log_softmax(xb @ weights + bias)

    n = x_train.shape[0]
    losses = []
    for epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            xb = x_train[start_i:end_i]
            yb = y_train[start_i:end_i]
            pred = model(xb)
            loss = nll(pred, yb)

            loss.backward()
            with torch.no_grad():
                weights -= weights.grad * lr
                bias -= bias.grad * lr
                weights.grad.zero_()
                bias.grad.zero_()
            losses.append(loss.item())
    return losses, accuracy(model(x_train), y_train).item()


# ***** stage 2: nn.Module and nn.Parameter, updated by hand *****

class Mnist_Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(784, 10) / math.sqrt(784))
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, xb):
        return xb @ self.weights + self.bias


def with_module(x_train, y_train, state, lr=0.5, epochs=2, bs=64):
    model = Mnist_Logistic()
    model.load_state_dict(state)
    loss_func = F.cross_entropy
    n = x_train.shape[0]
    losses = []
    for epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            xb = x_train[start_i:end_i]
            yb = y_train[start_i:end_i]
            pred = model(xb)
            loss = loss_func(pred, yb)

            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= p.grad * lr
                model.zero_grad()
            losses.append(loss.item())
    return losses


# ***** stage 3: a CNN from nn.Sequential, trained by fit() *****

class Lambda(nn.Module):
    def __init__(self, func):
        super().__init__()
        self.func = func

    def forward(self, x):
        return self.func(x)


def preprocess(x):
    return x.view(-1, 1, 28, 28)


def make_cnn():
    return nn.Sequential(
        Lambda(preprocess),
        nn.Conv2d(1, 8, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 10, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        Lambda(lambda x: x.view(x.size(0), -1)),
    )


def loss_batch(model, loss_func, xb, yb, opt=None):
    loss = loss_func(model(xb), yb)

    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()

    return loss.item(), len(xb)


def fit(epochs, model, loss_func, opt, train_dl, valid_dl, losses):
    val_losses = []
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_dl:
            losses.append(loss_batch(model, loss_func, xb, yb, opt)[0])

        model.eval()
        with torch.no_grad():
            losses_nums = [loss_batch(model, loss_func, xb, yb) for xb, yb in valid_dl]
            batch_losses, nums = zip(*losses_nums)
        val_loss = np.sum(np.multiply(batch_losses, nums)) / np.sum(nums)
        val_losses.append(float(val_loss))
    return val_losses


def main(train_dl, valid_dl, x_train, y_train, weights=None, epochs=2):
    torch.manual_seed(0)
    if weights is None:
        weights = {"scratch.weights": torch.randn(784, 10) / math.sqrt(784),
                   "scratch.bias": torch.zeros(10),
                   "logistic": Mnist_Logistic().state_dict(), "cnn": make_cnn().state_dict()}
    initial = copy.deepcopy(weights)
    scratch_losses, scratch_accuracy = from_scratch(x_train, y_train, weights["scratch.weights"],
                                                    weights["scratch.bias"], epochs=epochs)
    module_losses = with_module(x_train, y_train, weights["logistic"], epochs=epochs)
    model = make_cnn()
    model.load_state_dict(weights["cnn"])
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    cnn_losses = []
    val_losses = fit(epochs, model, F.cross_entropy, opt, train_dl, valid_dl, cnn_losses)
    return {"initial": initial, "losses": scratch_losses + module_losses + cnn_losses,
            "stages": [scratch_losses, module_losses, cnn_losses],
            "tests": [scratch_accuracy] + val_losses}
