"""Prompt formats. Each renders the prompt and the response separately, so training can mask
the prompt and generation can stop where the response starts.

The strings are the model cards' own:
- `alpaca_ja`: seed 003 (weblab), `以下は、タスクを説明する指示です。…### 指示:\\n…\\n\\n### 応答:`
- `rinna_chat`: seed 001, `ユーザー: …<NL>システム: `, newlines inside utterances become `<NL>`
- `bilingual_chat`: seed 002, the same joined by `\\n`
- `closed_qa`: seed 000, `context + "\\n\\n" + question`
- `swallow_instruct`: tokyotech-llm/Swallow-7b-instruct-hf's own prompt (seed 004's expert),
  `以下に、あるタスクを説明する指示があります。…### 指示:\\n…\\n\\n### 応答:`
- `one_shot`: FastChat's `one_shot` conversation, which jp-stable FastChat's
  gen_model_answer.py falls back to for a model no adapter matches (seed 004's five models).
  It is read from the installed FastChat (`fschat`), never restated here.

Each template names `stop_strings`: where a model writing in it starts the next user turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jaflow.errors import ConfigError, DataError

ALPACA_HEAD = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
ALPACA_HEAD_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request."
)
ALPACA_JA_HEAD = "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。"
ALPACA_JA_HEAD_INPUT = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
SWALLOW_HEAD = "以下に、あるタスクを説明する指示があります。リクエストを適切に完了するための回答を記述してください。"
SWALLOW_HEAD_INPUT = (
    "以下に、あるタスクを説明する指示があり、それに付随する入力が更なる文脈を提供しています。"
    "リクエストを適切に完了するための回答を記述してください。"
)


@dataclass(frozen=True)
class Rendered:
    prompt: str
    response: str

    @property
    def text(self) -> str:
        return self.prompt + self.response


Message = Mapping[str, str]  # {"role": "user"|"assistant", "content": str}


def _user_text(fields: Mapping[str, Any]) -> str:
    instruction = str(fields.get("instruction") or "")
    extra = str(fields.get("input") or "")
    return f"{instruction}\n{extra}" if extra else instruction


class Template:
    name = "base"
    stop_strings: tuple[str, ...] = ()

    def render(self, fields: Mapping[str, Any]) -> Rendered:
        """One instruction row (instruction, input, output) -> prompt and response."""
        messages = [{"role": "user", "content": _user_text(fields)}]
        return self.render_messages(
            messages + [{"role": "assistant", "content": str(fields.get("output") or "")}]
        )

    def render_messages(self, messages: Sequence[Message]) -> Rendered:
        """A conversation ending with an assistant turn -> (everything before, that turn)."""
        if not messages or messages[-1]["role"] != "assistant":
            raise DataError(f"{self.name}: a conversation must end with an assistant turn")
        prompt = self.prompt_for(messages[:-1])
        return Rendered(prompt, self.response_text(messages[-1]["content"]))

    def prompt_for(self, messages: Sequence[Message]) -> str:
        """The generation prompt for a conversation that ends with a user turn."""
        raise NotImplementedError

    def response_text(self, text: str) -> str:
        return text


class Alpaca(Template):
    name = "alpaca"
    stop_strings = ("### Instruction:",)
    head, head_input = ALPACA_HEAD, ALPACA_HEAD_INPUT
    instruction, input_, response = "### Instruction:", "### Input:", "### Response:"

    def render(self, fields: Mapping[str, Any]) -> Rendered:
        instruction = str(fields.get("instruction") or "")
        extra = str(fields.get("input") or "")
        if extra:
            prompt = (
                f"{self.head_input}\n\n{self.instruction}\n{instruction}\n\n"
                f"{self.input_}\n{extra}\n\n{self.response}"
            )
        else:
            prompt = f"{self.head}\n\n{self.instruction}\n{instruction}\n\n{self.response}"
        return Rendered(prompt, self.response_text(str(fields.get("output") or "")))

    def response_text(self, text: str) -> str:
        return "\n" + text

    def prompt_for(self, messages: Sequence[Message]) -> str:
        parts = [self.head]
        for m in messages:
            if m["role"] == "user":
                parts.append(f"{self.instruction}\n{m['content']}")
            else:
                parts.append(f"{self.response}\n{m['content']}")
        return "\n\n".join(parts) + f"\n\n{self.response}"


class AlpacaJa(Alpaca):
    name = "alpaca_ja"
    head, head_input = ALPACA_JA_HEAD, ALPACA_JA_HEAD_INPUT
    instruction, input_, response = "### 指示:", "### 入力:", "### 応答:"
    stop_strings = ("### 指示:",)


class SwallowInstruct(AlpacaJa):
    """Swallow-7b-instruct-hf's card prompt: the Japanese Alpaca layout, its own header."""

    name = "swallow_instruct"
    head, head_input = SWALLOW_HEAD, SWALLOW_HEAD_INPUT


class OneShot(Template):
    """FastChat's `one_shot` conversation (system message, one example exchange, then
    `### Human: ...\\n### Assistant:`), built by FastChat's own conversation code."""

    name = "one_shot"
    stop_strings = ("###",)  # the template's stop_str

    def _conversation(self):
        try:
            from fastchat.conversation import get_conv_template
        except ImportError as e:
            raise ConfigError(
                "chat_format one_shot needs FastChat's conversation templates: pip install 'fschat>=0.2.36' "
                "(only fastchat.conversation is used, so --no-deps is enough)"
            ) from e
        return get_conv_template("one_shot")

    def prompt_for(self, messages: Sequence[Message]) -> str:
        conv = self._conversation()
        roles = {"user": conv.roles[0], "assistant": conv.roles[1]}
        for m in messages:
            conv.append_message(roles[m["role"]], m["content"])
        conv.append_message(conv.roles[1], None)
        return conv.get_prompt()

    def response_text(self, text: str) -> str:
        return " " + text


class RinnaChat(Template):
    name = "rinna_chat"
    stop_strings = ("<NL>ユーザー:", "ユーザー:")
    sep = "<NL>"

    def _clean(self, text: str) -> str:
        return text.replace("\n", self.sep) if self.sep != "\n" else text

    def prompt_for(self, messages: Sequence[Message]) -> str:
        speaker = {"user": "ユーザー", "assistant": "システム"}
        turns = [f"{speaker[m['role']]}: {self._clean(m['content'])}" for m in messages]
        return self.sep.join(turns) + self.sep + "システム: "

    def response_text(self, text: str) -> str:
        return self._clean(text)


class BilingualChat(RinnaChat):
    name = "bilingual_chat"
    stop_strings = ("\nユーザー:", "ユーザー:")
    sep = "\n"


class ClosedQA(Template):
    """Seed 000: context, a blank line, then the question (fields input and instruction)."""

    name = "closed_qa"

    def render(self, fields: Mapping[str, Any]) -> Rendered:
        prompt = f"{fields.get('input') or ''}\n\n{fields.get('instruction') or ''}"
        return Rendered(prompt, str(fields.get("output") or ""))

    def prompt_for(self, messages: Sequence[Message]) -> str:
        return "\n\n".join(m["content"] for m in messages)


class Plain(Template):
    name = "plain"

    def prompt_for(self, messages: Sequence[Message]) -> str:
        return "\n".join(m["content"] for m in messages) + "\n"


class Custom(Template):
    """Python format strings over the row's fields, e.g. {"prompt": "{input}\\n\\n{instruction}"}."""

    name = "custom"

    def __init__(self, prompt: str, response: str = "{output}"):
        self.prompt_fmt, self.response_fmt = prompt, response

    def render(self, fields: Mapping[str, Any]) -> Rendered:
        try:
            return Rendered(self.prompt_fmt.format(**fields), self.response_fmt.format(**fields))
        except (KeyError, IndexError, TypeError) as e:
            raise DataError(
                f"template: cannot fill {self.prompt_fmt!r} / {self.response_fmt!r} from the row "
                f"({type(e).__name__}: {e}; fields: {sorted(fields)})"
            ) from None

    def prompt_for(self, messages: Sequence[Message]) -> str:
        fields = {"instruction": messages[-1]["content"], "input": "", "output": ""}
        return self.prompt_fmt.format(**fields)


TEMPLATES: dict[str, type[Template]] = {
    t.name: t
    for t in (Alpaca, AlpacaJa, SwallowInstruct, OneShot, RinnaChat, BilingualChat, ClosedQA, Plain)
}


def get_template(spec: str | Mapping[str, str]) -> Template:
    """A template from its name or a {prompt, response} mapping of format strings."""
    if isinstance(spec, Mapping):
        return Custom(spec["prompt"], spec.get("response", "{output}"))
    if spec not in TEMPLATES:
        raise ConfigError(f"unknown template '{spec}' (known: {sorted(TEMPLATES)})")
    return TEMPLATES[spec]()
