"""Claims that copy a sentence of their evidence: the cases that settle a verdict without scoring."""

import pytest

from lantern.verify.copies import Copy, changed_copy, copied_sentence, states_verbatim

SENTENCE = "In DEEP mode the loop really stops at the exit step, so a token that exits after 2 steps costs half the compute."


def test_verbatim_means_the_whole_sentence_word_for_word():
    assert states_verbatim("It stops early.", "it stops early") and states_verbatim('"It stops early."', "It stops  early!")
    assert not states_verbatim("It stops", "It stops early.") and not states_verbatim("", "") and not states_verbatim(".", "")


@pytest.mark.parametrize(
    "claim, expected",
    [
        ("In DEEP mode the loop does not really stop at the exit step.", Copy.negation_changed),
        ("In DEEP mode the loop never really stops at the exit step.", Copy.negation_changed),
        ("The loop doesn't really stop at the exit step.", Copy.negation_changed),
        ("A token that exits after 3 steps costs half the compute.", Copy.number_changed),
        ("A token that exits after 2 steps costs half the compute.", None),  # a faithful clause
        ("In DEEP mode the loop really stops at the exit step.", None),
        ("The loop stops at the exit step.", None),  # a word left out: a paraphrase, for the scored layers
        ("The loop does not stop.", None),  # three copied words are a phrase, not a clause
        ("In FAST mode no token runs all loop steps.", None),  # not this sentence's words
    ],
)
def test_a_copy_with_one_negation_or_number_changed_is_found(claim, expected):
    assert changed_copy(claim, SENTENCE) == expected


@pytest.mark.parametrize(
    "claim, sentence, expected",
    [
        ("In FAST mode no token runs all loop steps.", "In FAST mode every generated token runs all 4 loop steps.", Copy.negation_changed),
        ("Ouro applies its layers eight times per token.", "Ouro re-applies its layers 4 times per token.", Copy.number_changed),
        ("Ouro applies its layers four times per token.", "Ouro re-applies its layers 4 times per token.", None),
        ("Ouro applies the layers four times per token.", "Ouro re-applies its layers 4 times per token, its config says.", None),
        ("In 1977, PDO switched to a warm phase.", "1976/1977: PDO changed to a warm phase.", None),  # 1977 is there
        ("In 1905, the PDO switched to a warm phase in the Pacific.", "1976/1977: the PDO changed to a warm phase in the Pacific.", Copy.number_changed),
        # Too loose to be a copy: the scored layers decide. (Climate-FEVER pairs, labelled SUPPORTS.)
        ("Great Barrier Reef may perish by 2030s.", "Experts say the Great Barrier Reef 2050 plan is no longer achievable.", None),
        ("The Little Ice Age ended as recently as 1850.", "The Little Ice Age ended in the latter half of the 19th century.", None),
        ("Ouro applies the same layers eight times per token.", "Ouro re-applies its layers 4 times per token.", None),
        ("In FAST mode tokens never run loop steps.", "In FAST mode every single newly generated token runs all 4 loop steps.", None),
    ],
)
def test_a_loose_copy_may_leave_out_or_reword_a_few_words(claim, sentence, expected):
    assert changed_copy(claim, sentence) == expected


def test_a_negation_already_in_the_source_is_kept_in_step():
    source = "The gate is not trained with the language-modelling loss alone."
    assert changed_copy("The gate is not trained with the language-modelling loss alone.", source) is None
    assert changed_copy("The gate is trained with the language-modelling loss alone.", source) == Copy.negation_changed
    assert changed_copy("Not all tokens exit at the first step of the loop.", "Not all tokens exit at the first step of the loop, the paper says.") is None


def test_a_negation_outside_the_copied_clause_leaves_the_case_to_scoring():
    """Climate-FEVER has this pair, labelled SUPPORTS: the negation governs the quoted clause."""
    source = 'Pruitt stated that he "would not agree that" carbon dioxide is "a primary contributor to the global warming that we see".'
    assert changed_copy('Carbon dioxide is not "a primary contributor to the global warming that we see."', source) is None


def test_copied_sentence_prefers_the_verbatim_match():
    sentences = ["The loop does not really stop at the exit step.", "The loop really stops at the exit step."]
    assert copied_sentence("The loop really stops at the exit step.", sentences) == (1, Copy.verbatim)
    assert copied_sentence("The loop does not really stop at the exit step", sentences[1:]) == (0, Copy.negation_changed)
    assert copied_sentence("Something else entirely is claimed here.", sentences) is None
