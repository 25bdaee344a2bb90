from critique_synth.inject import inject_error
from critique_synth.verify import extract_final_answer

SOLUTION = (
    "There are 12 x 2 = 24 students playing volleyball.\n"
    "There are 17 + 17 = 34 students playing table tennis.\n"
    "In total there are 12 + 24 + 34 = 70 students.\n"
    "#### 70"
)


def test_same_inputs_give_the_same_variant() -> None:
    assert inject_error(SOLUTION, 1, "p") == inject_error(SOLUTION, 1, "p")


def test_a_changed_computation_is_carried_to_the_final_answer() -> None:
    for salt in ("a", "b", "c", "d", "e"):
        injected = inject_error(SOLUTION, 1, salt)
        assert injected is not None and injected.kind == "computation"
        assert extract_final_answer(injected.text) != "70"
        changed = [
            (before, after)
            for before, after in zip(SOLUTION.splitlines(), injected.text.splitlines(), strict=True)
            if before != after
        ]
        assert changed, salt
        assert injected.text.splitlines()[-1] == f"#### {extract_final_answer(injected.text)}"


def test_carry_recomputes_dependent_steps() -> None:
    solution = "First 2 * 3 = 6.\nThen 6 * 10 = 60.\n#### 60"
    injected = inject_error(solution, 1, "x")
    assert injected is not None
    first, second, final = injected.text.splitlines()
    wrong = int(first.split("= ")[1].rstrip("."))
    if injected.step == 1:
        assert second == f"Then {wrong} * 10 = {wrong * 10}."
        assert final == f"#### {wrong * 10}"


def test_even_variants_change_only_the_final_answer() -> None:
    injected = inject_error(SOLUTION, 2, "p")
    assert injected is not None and injected.kind == "final_answer"
    assert injected.text.splitlines()[:3] == SOLUTION.splitlines()[:3]
    assert injected.text.splitlines()[3] != "#### 70"


def test_no_numbers_no_variant() -> None:
    assert inject_error("I do not know.", 1, "p") is None
