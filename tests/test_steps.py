"""The one definition of a step, as people write solutions."""

from critique_synth.steps import number_steps, split_steps, step_at


def test_lines_are_steps_and_the_answer_line_is_one() -> None:
    text = "Each bag holds 4 * 5 = 20 apples.\n\nSo 20 + 3 = 23 apples.\n#### 23"
    assert [s.text for s in split_steps(text)] == [
        "Each bag holds 4 * 5 = 20 apples.",
        "So 20 + 3 = 23 apples.",
        "#### 23",
    ]


def test_bullets_under_a_numbered_item_belong_to_its_step() -> None:
    text = (
        "1. Cost of pens:\n   - 3 * 2 = 6 dollars\n- 4 * 1 = 4 dollars\n2. Total: 6 + 4 = 10 dollars\n#### 10"
    )
    steps = split_steps(text)
    assert [s.number for s in steps] == [1, 2, 3]
    assert "4 * 1 = 4" in steps[0].text and steps[1].text.startswith("2. Total")
    assert step_at(steps, text.index("4 * 1")) == 1 and step_at(steps, text.index("#### 10")) == 3


def test_bullets_without_numbered_items_are_steps_of_their_own() -> None:
    text = "- 3 * 2 = 6\n- 6 + 1 = 7\n- The answer is 7."
    assert len(split_steps(text)) == 3


def test_a_single_paragraph_is_split_into_sentences() -> None:
    text = "Tom has 32 marbles. 32 minus 30 equals 2. He finds 5 more, so 2 plus 5 equals 7. The answer is 7."
    assert [s.number for s in split_steps(text)] == [1, 2, 3, 4]
    assert split_steps(text)[2].text == "He finds 5 more, so 2 plus 5 equals 7."


def test_numbering_is_stable_when_numbered_text_is_split_again() -> None:
    """What the teacher reads and the CFT input shows numbers the same steps again."""
    text = "1. Cost of pens:\n   - 3 * 2 = 6 dollars\n2. Total: 6 + 4 = 10 dollars\n#### 10"
    numbered = number_steps(text)
    assert numbered.splitlines()[0] == "Step 1: 1. Cost of pens:"
    assert [s.number for s in split_steps(numbered)] == [s.number for s in split_steps(text)]


def test_a_single_numbered_step_is_not_split_into_sentences() -> None:
    """A one-step ProcessBench row: its label counts one step, whatever its sentences."""
    from critique_synth.processbench import join_steps

    text = join_steps(["First 2 + 3 = 5. Then 5 * 2 = 11, so the answer is 11."])
    assert [s.number for s in split_steps(text)] == [1]
