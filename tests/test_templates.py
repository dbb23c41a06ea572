"""Prompt formats against the exact strings in the seed model cards."""

import pytest

from jaflow.data.templates import TEMPLATES, get_template
from jaflow.errors import ConfigError, DataError


def test_alpaca_ja_matches_weblab_card():
    # seed 003: f'以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。\n\n### 指示:\n{text}\n\n### 応答:'
    text = "大規模言語モデルについて説明してください。"
    card = f"以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。\n\n### 指示:\n{text}\n\n### 応答:"
    rendered = get_template("alpaca_ja").render({"instruction": text, "output": "はい。"})
    assert rendered.prompt == card
    assert rendered.response == "\nはい。"


def test_alpaca_ja_with_input_matches_jp_stable_0_3_marc_prompt():
    instruction = (
        "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
    )
    review = "とても良い商品でした。"
    rendered = get_template("alpaca_ja").render(
        {"instruction": instruction, "input": review, "output": "ポジティブ"}
    )
    desc = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
    query = f"### 指示:\n{instruction}\n\n### 入力:\n{review}\n\n### 応答:\n"
    assert rendered.text == desc + query + "ポジティブ"


def test_rinna_chat_matches_card_example():
    messages = [
        {"role": "user", "content": "日本のおすすめの観光地を教えてください。"},
        {"role": "assistant", "content": "どの地域の観光地が知りたいですか?"},
        {"role": "user", "content": "渋谷の観光地を教えてください。"},
    ]
    card = (
        "ユーザー: 日本のおすすめの観光地を教えてください。<NL>システム: どの地域の観光地が知りたいですか?"
        "<NL>ユーザー: 渋谷の観光地を教えてください。<NL>システム: "
    )
    assert get_template("rinna_chat").prompt_for(messages) == card


def test_rinna_chat_replaces_newlines_inside_utterances():
    rendered = get_template("rinna_chat").render(
        {"instruction": "一行目\n二行目", "output": "答え\n続き"}
    )
    assert rendered.prompt == "ユーザー: 一行目<NL>二行目<NL>システム: "
    assert rendered.response == "答え<NL>続き"
    assert "\n" not in rendered.text


def test_bilingual_chat_matches_card_example():
    messages = [
        {"role": "user", "content": "Hello, you are an assistant that helps me learn Japanese."},
        {"role": "assistant", "content": "Sure, what can I do for you?"},
        {"role": "user", "content": "VRはなんですか。"},
    ]
    card = (
        "ユーザー: Hello, you are an assistant that helps me learn Japanese.\nシステム: Sure, what can I do for you?"
        "\nユーザー: VRはなんですか。\nシステム: "
    )
    assert get_template("bilingual_chat").prompt_for(messages) == card


def test_closed_qa_matches_openorca_stx_card():
    context, question = (
        "リーチさんからユニホームが届いた。",
        " リーチ・マイケルは何を送ってきましたか?",
    )
    rendered = get_template("closed_qa").render(
        {"input": context, "instruction": question, "output": "ユニホーム"}
    )
    assert rendered.prompt == context + "\n\n" + question
    assert rendered.response == "ユニホーム"


def test_alpaca_english_with_and_without_input():
    t = get_template("alpaca")
    with_input = t.render({"instruction": "Add.", "input": "1+1", "output": "2"})
    assert with_input.prompt.startswith(
        "Below is an instruction that describes a task, paired with an input"
    )
    assert with_input.prompt.endswith("### Instruction:\nAdd.\n\n### Input:\n1+1\n\n### Response:")
    assert "### Input:" not in t.render({"instruction": "Add.", "output": "2"}).prompt


def test_custom_format_strings_and_missing_field():
    t = get_template({"prompt": "{context}\n\n{question}", "response": "{answer}"})
    assert t.render({"context": "c", "question": "q", "answer": "a"}).text == "c\n\nqa"
    with pytest.raises(DataError, match="question"):
        t.render({"context": "c", "answer": "a"})


def test_unknown_template_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown template 'alpaka'"):
        get_template("alpaka")


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_prompt_and_response_concatenate_to_the_full_text(name):
    rendered = TEMPLATES[name]().render({"instruction": "質問", "input": "文脈", "output": "答え"})
    assert rendered.text == rendered.prompt + rendered.response
    assert rendered.response.endswith("答え")


def test_swallow_instruct_matches_the_swallow_instruct_card():
    # tokyotech-llm/Swallow-7b-instruct-hf's prompt (issue 18): its own header, Alpaca-ja layout
    text = "東京の観光地を教えてください。"
    card = (
        "以下に、あるタスクを説明する指示があります。リクエストを適切に完了するための回答を記述してください。"
        f"\n\n### 指示:\n{text}\n\n### 応答:"
    )
    fmt = get_template("swallow_instruct")
    assert fmt.prompt_for([{"role": "user", "content": text}]) == card
    assert fmt.render({"instruction": text, "output": "浅草です。"}).prompt == card
    assert fmt.stop_strings == ("### 指示:",)


def test_one_shot_is_fastchats_one_shot_conversation():
    from fastchat.conversation import get_conv_template

    conv = get_conv_template("one_shot")
    fmt = get_template("one_shot")
    prompt = fmt.prompt_for([{"role": "user", "content": "日本の首都は?"}])
    # FastChat's layout: its system message, its one example exchange, then the question
    assert prompt.startswith(conv.system_message + "\n### Human: ")
    assert prompt.count("### Human: ") == 2 and prompt.count("### Assistant: ") == 1
    assert prompt.endswith("\n### Human: 日本の首都は?\n### Assistant:")
    two = fmt.prompt_for(
        [
            {"role": "user", "content": "A"},
            {"role": "assistant", "content": "B"},
            {"role": "user", "content": "C"},
        ]
    )
    assert two.endswith("\n### Human: A\n### Assistant: B\n### Human: C\n### Assistant:")
    assert fmt.stop_strings == (conv.stop_str,) == ("###",)
    # a training row: the prompt is masked up to "### Assistant:", the response follows a space
    rendered = fmt.render({"instruction": "A", "output": "B"})
    assert rendered.text.endswith("### Human: A\n### Assistant: B")


def test_custom_template_reads_nested_fields_like_the_tydiqa_goldp_card_template():
    fmt = get_template(
        {"prompt": "{passage_text}\n\n{question_text}", "response": "{answers[text][0]}"}
    )
    row = {
        "passage_text": "富士山は高い。",
        "question_text": "高い山は?",
        "answers": {"text": ["富士山"], "start_byte": [0]},
    }
    rendered = fmt.render(row)
    assert rendered.prompt == "富士山は高い。\n\n高い山は?" and rendered.response == "富士山"
    with pytest.raises(DataError, match="IndexError"):
        fmt.render(dict(row, answers={"text": []}))
