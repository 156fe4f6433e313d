"""Parsing teacher replies: adversarial, but real-looking, replies."""

from __future__ import annotations

import pytest

from reflection_tuning.steps.reflect_instruction import parse_reply as parse_instruction_reply
from reflection_tuning.steps.reflect_response import parse_reply as parse_response_reply


def test_clean_instruction_reply():
    r = parse_instruction_reply(
        "The instruction is vague.\n[New Instruction] Explain photosynthesis step by step. [End]\n"
        "[New Answer] Plants turn light into sugar. [End]"
    )
    assert r.ok and r.reason is None and (r.candidates, r.chosen) == (1, 0)
    assert r.fields == {
        "instruction": "Explain photosynthesis step by step.",
        "output": "Plants turn light into sugar.",
    }


@pytest.mark.parametrize("word", ["Endpoint", "Ending", "end", "END", "Endgame", "weekend", "[End of list]"])
def test_words_containing_end_never_cut_a_segment(word):
    text = f"[New Instruction] Describe the {word} of a REST API and where it ends. [End]\n" \
           f"[New Answer] The {word} is where requests go; the end. [End]"
    r = parse_instruction_reply(text)
    assert r.ok
    assert r.fields["instruction"] == f"Describe the {word} of a REST API and where it ends."
    assert r.fields["output"] == f"The {word} is where requests go; the end."


def test_reference_regex_failure_case_endpoint_without_final_end():
    # the reference's (\[End\]|End|$) would stop at "Endpoint"
    r = parse_response_reply("Critique: too short.\n[Better Answer] An Endpoint is a URL. Endpoints end in paths.")
    assert r.ok and r.fields["output"] == "An Endpoint is a URL. Endpoints end in paths."


@pytest.mark.parametrize(
    "text",
    [
        "**[New Instruction]** Write a haiku about rain. **[End]**\n**[New Answer]** Rain taps the roof. **[End]**",
        "**[New Instruction]**: Write a haiku about rain.\n\n**[New Answer]**: Rain taps the roof.",
        "New Instruction: Write a haiku about rain.\nNew Answer: Rain taps the roof.",
        "### New Instruction:\nWrite a haiku about rain.\n\n### New Answer:\nRain taps the roof.\n[End]",
        "**New Instruction:** Write a haiku about rain.\n**New Answer:** Rain taps the roof.[END]",
        "[new instruction] Write a haiku about rain. [end] [new answer] Rain taps the roof. [end]",
        "[New Instruction] Write a haiku about rain. [End]\n[New Answer] Rain taps the roof. [End]\n\n"
        "Hope this helps! End.",
    ],
)
def test_marker_variants(text):
    r = parse_instruction_reply(text)
    assert r.ok, r.reason
    assert r.fields == {"instruction": "Write a haiku about rain.", "output": "Rain taps the roof."}


def test_missing_end_runs_to_next_marker_or_end_of_text():
    r = parse_instruction_reply("[New Instruction] List three primes\n[New Answer] 2, 3 and 5")
    assert r.ok and r.fields == {"instruction": "List three primes", "output": "2, 3 and 5"}


def test_multiline_content_is_kept_whole():
    answer = "Steps:\n1. Boil water.\n2. Add tea.\n\n**Note:** the end result should be hot."
    r = parse_response_reply(f"[Better Answer]\n{answer}\n[End]\nThanks")
    assert r.fields["output"] == answer


def test_prose_mentions_of_the_markers_are_not_markers():
    text = (
        "The new instruction should be harder, and the new answer should be longer; a better answer "
        "would cite sources.\n[New Instruction] Compare TCP and UDP in the context of video calls. [End]\n"
        "[New Answer] TCP retransmits; UDP does not. [End]"
    )
    r = parse_instruction_reply(text)
    assert r.ok and r.candidates == 1
    assert r.fields["instruction"] == "Compare TCP and UDP in the context of video calls."


def test_echoed_format_is_skipped_and_recorded():
    text = (
        "I will answer in the format [New Instruction] <the improved instruction> [End] "
        "[New Answer] <the answer to the improved instruction> [End].\n\n"
        "[New Instruction] Summarise the causes of World War I. [End]\n[New Answer] Alliances, militarism. [End]"
    )
    r = parse_instruction_reply(text)
    assert r.ok and (r.candidates, r.chosen) == (2, 1)
    assert r.fields["instruction"] == "Summarise the causes of World War I."
    assert "template echo" in r.reason


def test_several_complete_candidates_take_the_first():
    text = "[Better Answer] First version. [End]\n[Better Answer] Second version. [End]"
    r = parse_response_reply(text)
    assert r.ok and r.fields["output"] == "First version." and (r.candidates, r.chosen) == (2, 0)
    assert "candidate 1 of 2" in r.reason


def test_instruction_without_answer_then_complete_candidate():
    text = "[New Instruction] Draft one. [End]\n[New Instruction] Draft two. [End]\n[New Answer] Answer two. [End]"
    r = parse_instruction_reply(text)
    assert r.ok and r.fields == {"instruction": "Draft two.", "output": "Answer two."} and r.chosen == 1


def test_answer_echo_then_real_answer_for_same_instruction():
    text = "[New Instruction] Name a prime. [End]\n[New Answer] your answer [End]\n[New Answer] 7 [End]"
    r = parse_instruction_reply(text)
    assert r.ok and r.fields["output"] == "7"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "no [New Instruction]"),
        ("I think the instruction is fine as it is.", "no [New Instruction]"),
        ("[New Instruction] your instruction [End]\n[New Answer] your answer [End]", "template echo"),
        ("[New Instruction] <the improved instruction> [End]\n[New Answer] <answer> [End]", "template echo"),
        ("[New Instruction] [End]\n[New Answer] Something. [End]", "empty new instruction"),
        ("[New Instruction] Do X. [End]\n[New Answer] [End]", "empty new answer"),
        ("[New Instruction] Do X. [End] and no answer follows", "no [New Answer]"),
        ("[New Answer] An answer without an instruction. [End]", "no [New Instruction]"),
        ("**[New Instruction]** **Your New Instruction** [End] [New Answer] ok [End]", "template echo"),
    ],
)
def test_instruction_parse_errors(text, reason):
    r = parse_instruction_reply(text)
    assert r.status == "parse_error" and r.fields == {} and r.chosen is None
    assert reason in r.reason


@pytest.mark.parametrize(
    "text, reason",
    [
        ("The answer is already good.", "no [Better Answer]"),
        ("[Better Answer] your answer [End]", "template echo"),
        ("[Better Answer] <the improved answer> [End]", "template echo"),
        ("[Better Answer]   \n [End] trailing", "empty better answer"),
        ("[New Answer] wrong marker for this kind [End]", "no [Better Answer]"),
    ],
)
def test_response_parse_errors(text, reason):
    r = parse_response_reply(text)
    assert r.status == "parse_error" and r.fields == {}
    assert reason in r.reason


def test_markers_of_the_other_kind_do_not_leak_into_content():
    r = parse_instruction_reply("[New Instruction]\nCount to three.\n[New Answer]\n1, 2, 3\n")
    assert r.fields == {"instruction": "Count to three.", "output": "1, 2, 3"}


def test_none_and_non_marker_brackets():
    assert parse_response_reply(None).status == "parse_error"  # type: ignore[arg-type]
    r = parse_response_reply("[Better Answer] Use a list like [1, 2] or [Ending] tags. [End]")
    assert r.fields["output"] == "Use a list like [1, 2] or [Ending] tags."


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[Better Answer] This is **important** [End]", "This is **important**"),
        ("[Better Answer] **Bold start** then text [End]", "**Bold start** then text"),
        ("**[Better Answer]** A plain answer.** [End]", "A plain answer."),
        ("**[Better Answer]** **A plain answer.** [End]", "**A plain answer.**"),
        ('[Better Answer] "Quoted whole answer" [End]', "Quoted whole answer"),
        ('[Better Answer] "a" and "b" [End]', '"a" and "b"'),
    ],
)
def test_emphasis_and_quotes_in_content_are_kept_when_balanced(text, expected):
    assert parse_response_reply(text).fields["output"] == expected


def test_sentence_form_label_at_line_start_is_a_marker():
    # real replies of the embedded SmolLM2 teacher
    r = parse_response_reply('The better answer is: "A tennis match is a sparkling display of athleticism."')
    assert r.ok and r.fields["output"] == "A tennis match is a sparkling display of athleticism."
    r = parse_response_reply("The better answer is:\n\nThe Civil Rights Movement was a pivotal period.")
    assert r.ok and r.fields["output"] == "The Civil Rights Movement was a pivotal period."
    # only at the start of a line, and only the label itself
    assert not parse_response_reply("I think the better answer is: no.").ok
    assert not parse_response_reply("The better answer to the question is: yes.").ok


def test_echoes_of_the_shipped_prompts_are_rejected():
    assert not parse_response_reply("[Better Answer] the better answer [End]").ok
    r = parse_instruction_reply("[New Instruction] the better instruction [End]\n[New Answer] the answer to it [End]")
    assert not r.ok


def test_instruction_that_quotes_the_markers_is_kept_whole():
    text = ("[New Instruction] Explain what the tags [New Answer] and [End] do in a prompt template, "
            "with an example. [End]\n[New Answer] They delimit the blocks a model must fill. [End]")
    r = parse_instruction_reply(text)
    assert r.ok and r.fields["output"] == "They delimit the blocks a model must fill."
    assert r.fields["instruction"].startswith("Explain what the tags [New Answer] and")


def test_answer_that_quotes_a_marker_mid_line_is_kept_whole():
    text = "[Better Answer] Write the literal text [Better Answer] on its own line to start a block. [End]"
    r = parse_response_reply(text)
    assert r.ok and r.candidates == 1
    assert r.fields["output"] == "Write the literal text [Better Answer] on its own line to start a block."


def test_blocks_run_together_on_one_line_still_parse():
    r = parse_instruction_reply("Sure. [New Instruction] Name three primes. [New Answer] 2, 3 and 5.")
    assert r.ok and r.fields == {"instruction": "Name three primes.", "output": "2, 3 and 5."}


@pytest.mark.parametrize("text", [
    "[New Instruction] [New Answer] [End]",  # empty blocks
    "[New Instruction] Describe [New Instruction] recursion. [End]",  # no answer at all
    "[Better Answer]" * 3,
    "[Better Answer] The better answer is: [End]",  # a label, no answer
])
def test_adversarial_marker_soup_is_a_parse_error(text):
    parse = parse_response_reply if "Better" in text else parse_instruction_reply
    assert not parse(text).ok
