"""The trainer's EMA (pipelines/core/ema.py) is diffusers' EMAModel, without its import: the
same weights to the bit over a run, and each reads the other's checkpointed state."""

import json

import torch
from diffusers.training_utils import EMAModel

from pipelines.core.ema import EMA


def net() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5),
                                torch.nn.Linear(5, 3))
    model[0].bias.requires_grad_(False)      # a frozen parameter is copied, not averaged
    return model


def train(model: torch.nn.Module, emas: list, steps: int, seed: int) -> None:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss = model(torch.randn(8, 6, generator=g)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            model[0].bias.add_(0.01)         # the frozen one moves too, by hand
        for ema in emas:
            ema.step(model.parameters())


def test_the_same_weights_as_diffusers_ema_model_over_a_warmed_up_run():
    model = net()
    ours = EMA(model.parameters(), decay=0.95, power=2 / 3)
    theirs = EMAModel(model.parameters(), decay=0.95, use_ema_warmup=True, power=2 / 3)
    train(model, [ours, theirs], steps=300, seed=1)   # past the warm-up: decay capped at 0.95
    assert ours.get_decay(300) == theirs.get_decay(300) == 0.95
    assert ours.get_decay(5) == theirs.get_decay(5) < 0.95
    for a, b, p in zip(ours.shadow_params, theirs.shadow_params, model.parameters()):
        assert torch.equal(a, b)
        assert not p.requires_grad or not torch.equal(a, p)   # an average, not the weights
    assert torch.equal(ours.shadow_params[1], model[0].bias)  # the frozen bias: copied

    # store / copy_to / restore: sample with the average, train on with the live weights
    live = [p.detach().clone() for p in model.parameters()]
    ours.store(model.parameters())
    ours.copy_to(model.parameters())
    assert all(torch.equal(p, a) for p, a in zip(model.parameters(), ours.shadow_params))
    ours.restore(model.parameters())
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), live))


def test_each_resumes_from_the_others_state_as_the_checkpoint_keeps_it():
    """The checkpoint keeps the state's counters as JSON (ema.json) and the shadows apart."""
    def through_json(state: dict) -> dict:
        shadows = [t.clone() for t in state.pop("shadow_params")]
        return {**json.loads(json.dumps(state)), "shadow_params": shadows}

    model = net()
    old = EMAModel(model.parameters(), decay=0.995, use_ema_warmup=True, power=2 / 3)
    train(model, [old], steps=40, seed=2)
    resumed_ours = EMA(net().parameters(), decay=0.995)
    resumed_ours.load_state_dict(through_json(old.state_dict()))
    assert resumed_ours.optimization_step == 40
    train(model, [old, resumed_ours], steps=40, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(resumed_ours.shadow_params, old.shadow_params))

    back = EMAModel(net().parameters(), decay=0.995, use_ema_warmup=True)
    back.load_state_dict(through_json(resumed_ours.state_dict()))
    assert back.optimization_step == 80 and back.power == 2 / 3
    train(model, [back, resumed_ours], steps=10, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(resumed_ours.shadow_params, back.shadow_params))
