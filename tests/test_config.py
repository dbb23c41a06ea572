"""Config schema validation and the model graph."""

import copy

import pytest

from jaflow.config import load_experiment, load_yaml, validate_config
from jaflow.errors import ConfigError


@pytest.fixture
def demo(repo_root):
    return load_yaml(repo_root / "config" / "config.yaml")


def graph_of(models, datasets=("d",)):
    config = {
        "name": "t",
        "datasets": {d: {"sources": [{"name": "s", "path": "data/x.jsonl"}]} for d in datasets},
        "models": models,
    }
    return load_experiment(config).graph


def test_demo_config_is_valid_and_defaults_are_filled(demo):
    validate_config(demo)
    train = demo["models"]["tiny_qlora"]["train"]
    assert train["lora_r"] == 8  # set in the config
    assert (
        train["lora_alpha"] == 16 and train["lora_dropout"] == 0.05 and train["adam_beta2"] == 0.999
    )
    assert train["max_grad_norm"] == 0.3 and train["lr_scheduler_type"] == "constant"
    assert demo["models"]["tiny_llama"]["use_fast"] is True
    assert demo["models"]["tiny_llama"]["trust_remote_code"] is False
    assert demo["mtbench"]["temperature"]["writing"] == 0.5


def test_defaults_are_not_shared_between_models(demo):
    validate_config(demo)
    demo["models"]["tiny_qlora"]["train"]["target_modules"] = ["q_proj"]
    assert demo["models"]["tiny_moe_lisa"]["train"]["target_modules"] == "all-linear"


def test_wrong_type_names_the_key_path(demo):
    demo["models"]["tiny_qlora"]["train"]["lora_r"] = "sixty-four"
    with pytest.raises(
        ConfigError,
        match=r"models\.tiny_qlora\.train\.lora_r: 'sixty-four' is not of type 'integer'",
    ):
        validate_config(demo)


def test_unknown_key_names_the_key_path(demo):
    demo["models"]["tiny_qlora"]["train"]["lora_rank"] = 8
    with pytest.raises(
        ConfigError, match=r"models\.tiny_qlora\.train: Additional properties .*'lora_rank'"
    ):
        validate_config(demo)


def test_wrong_value_names_the_key_path(demo):
    demo["models"]["tiny_qlora"]["method"] = "qlorra"
    with pytest.raises(ConfigError, match=r"models\.tiny_qlora\.method: 'qlorra' is not one of"):
        validate_config(demo)


def test_bad_sampling_rule_names_the_key_path(demo):
    demo["datasets"]["demo_mix"]["sources"][0]["rules"][2]["min_chars"]["k"] = -1
    with pytest.raises(
        ConfigError, match=r"datasets\.demo_mix\.sources\.0\.rules\.2\.min_chars\.k"
    ):
        validate_config(demo)


def test_graph_of_demo(demo):
    graph = load_experiment(demo).graph
    assert (
        graph.order.index("tiny_llama")
        < graph.order.index("tiny_qlora")
        < graph.order.index("tiny_moe")
    )
    assert graph.order.index("tiny_moe") < graph.order.index("tiny_moe_lisa")
    # tiny_qlora is an expert of the merge, so its adapter is merged into full weights
    assert graph.needs_full_weights("tiny_qlora") and not graph.is_adapter("tiny_qlora")
    assert graph.hf_args("tiny_qlora")["pretrained"] == "results/demo/models/tiny_qlora"
    assert graph.hf_args("tiny_moe_lisa")["pretrained"] == "results/demo/models/tiny_moe_lisa"
    assert graph.model_inputs("tiny_llama") == ["results/demo/tiny/models/llama"]
    assert graph.chat_format("tiny_moe_lisa") == "alpaca_ja"


def test_adapter_model_is_evaluated_as_base_plus_peft():
    graph = graph_of(
        {
            "base": {"pretrained": "org/base", "use_fast": False},
            "sft": {"from": "base", "method": "qlora", "dataset": "d"},
        }
    )
    args = graph.hf_args("sft")
    assert args["pretrained"] == "org/base" and args["peft"] == "results/t/models/sft"
    assert args["use_fast"] is False  # inherited from the base: rinna needs slow tokenizers
    assert graph.model_inputs("sft") == ["results/t/models/sft"]  # hub bases are no input
    assert graph.model_inputs("base") == []


def test_cycle_is_a_config_error():
    with pytest.raises(
        ConfigError,
        match="cycle in the model graph: a -> b -> a|cycle in the model graph: b -> a -> b",
    ):
        graph_of(
            {
                "a": {"from": "b", "method": "lora", "dataset": "d"},
                "b": {"from": "a", "method": "lora", "dataset": "d"},
            }
        )


def test_unknown_model_reference_is_a_config_error():
    with pytest.raises(ConfigError, match=r"models\.moe\.experts: unknown model 'nope'"):
        graph_of({"a": {"pretrained": "x/y"}, "moe": {"base": "a", "experts": ["a", "nope"]}})
    with pytest.raises(ConfigError, match=r"models\.sft\.from: unknown model 'ghost'"):
        graph_of({"sft": {"from": "ghost", "method": "lora", "dataset": "d"}})


def test_unknown_dataset_is_a_config_error():
    with pytest.raises(ConfigError, match=r"models\.sft\.dataset: unknown dataset 'nope'"):
        graph_of(
            {"a": {"pretrained": "x/y"}, "sft": {"from": "a", "method": "lora", "dataset": "nope"}}
        )


def test_merge_adapter_false_with_dependents_is_refused():
    with pytest.raises(ConfigError, match=r"models\.sft\.select\.merge_adapter: false"):
        graph_of(
            {
                "a": {"pretrained": "x/y"},
                "sft": {
                    "from": "a",
                    "method": "lora",
                    "dataset": "d",
                    "select": {"merge_adapter": False},
                },
                "moe": {"base": "a", "experts": ["a", "sft"]},
            }
        )


def test_a_model_must_be_one_kind():
    config = {"models": {"m": {"pretrained": "x/y", "from": "z"}}}
    with pytest.raises(ConfigError, match=r"models\.m"):
        validate_config(copy.deepcopy(config))


def test_evaluations_may_only_name_models_of_the_graph(demo):
    from jaflow.workflow import Targets

    graph = load_experiment(demo).graph
    demo["jglue"]["runs"][0]["models"].append("tiny_gpt5")
    with pytest.raises(ConfigError, match=r"jglue\.runs\.0\.models: unknown model 'tiny_gpt5'"):
        Targets(demo, graph)
