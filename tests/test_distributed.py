"""train.distributed settings as TrainingArguments, the global batch, refused combinations."""

from __future__ import annotations

import pytest
from train_world import train_world  # noqa: F401  (fixture)

from jaflow.errors import ConfigError
from jaflow.train import distributed
from jaflow.train.launch import launch_command, nproc, torchrun_command


def block(**kw):
    return distributed.filled(kw)


def test_global_batch_gives_accumulation():
    assert (
        distributed.accumulation_steps(
            block(global_batch_size=64, per_device_train_batch_size=8), 8
        )
        == 1
    )
    assert (
        distributed.accumulation_steps(
            block(global_batch_size=64, per_device_train_batch_size=8), 2
        )
        == 4
    )
    assert (
        distributed.accumulation_steps(block(gradient_accumulation_steps=3), 8) == 3
    )  # no global batch
    with pytest.raises(ConfigError, match="train.global_batch_size"):
        distributed.accumulation_steps(
            block(global_batch_size=64, per_device_train_batch_size=6), 2
        )


def test_deepspeed_config_generation():
    z3 = distributed.deepspeed_config(block(distributed={"strategy": "deepspeed"})["distributed"])
    assert z3["zero_optimization"]["stage"] == 3
    assert z3["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert "offload_optimizer" not in z3["zero_optimization"]
    assert z3["bf16"] == {"enabled": "auto"} and z3["gradient_accumulation_steps"] == "auto"
    off = distributed.deepspeed_config(
        block(distributed={"strategy": "deepspeed", "zero_stage": 2, "cpu_offload": True})[
            "distributed"
        ]
    )
    assert off["zero_optimization"]["stage"] == 2
    assert off["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert "offload_param" not in off["zero_optimization"]  # parameters are whole at stage 2
    kw = distributed.training_kwargs({"distributed": {"strategy": "deepspeed"}}, "full")
    assert kw["deepspeed"]["zero_optimization"]["stage"] == 3


def test_fsdp_kwargs_name_the_decoder_layer(train_world):  # noqa: F811
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(train_world["llama"])
    kw = distributed.training_kwargs(
        {"distributed": {"strategy": "fsdp"}, "gradient_checkpointing": True}, "full", model
    )
    assert kw["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert (
        kw["fsdp_config"]["version"] == 2
        and kw["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"
    )
    # FSDP's own activation checkpointing instead of the model's, never both
    assert (
        kw["fsdp_config"]["activation_checkpointing"] is True
        and kw["activation_checkpointing"] is False
    )


@pytest.mark.parametrize(
    "method,dist,match",
    [
        ("lisa", {"strategy": "deepspeed"}, "lisa with strategy deepspeed"),
        ("qlora", {"strategy": "deepspeed", "zero_stage": 3}, "qlora with deepspeed zero_stage 3"),
    ],
)
def test_refused_combinations(method, dist, match):
    with pytest.raises(ConfigError, match=match):
        distributed.training_kwargs({"distributed": dist}, method)


def test_qlora_fsdp_refused():
    with pytest.raises(ConfigError, match="qlora with strategy fsdp"):
        distributed.training_kwargs({"distributed": {"strategy": "fsdp"}}, "qlora", object())


def test_multi_node_launch_command(tmp_path):
    assert nproc({"gpu": 16, "nodes": 2}, env={}) == 8
    with pytest.raises(ConfigError, match="resources.gpu"):
        nproc({"gpu": 9, "nodes": 2}, env={})
    cmd = torchrun_command(tmp_path / "job.json", 8, nodes=2, rdzv="node1:29400", rdzv_id="77")
    assert (
        cmd[cmd.index("--nnodes") + 1] == "2"
        and cmd[cmd.index("--rdzv_endpoint") + 1] == "node1:29400"
    )
    assert "--standalone" not in cmd and cmd[cmd.index("--rdzv_backend") + 1] == "c10d"
    single = launch_command(tmp_path / "job.json", 2)
    assert "--standalone" in single and "srun" not in single
