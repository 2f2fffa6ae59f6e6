import pickle

import pytest

from triage.tokenize import tokenize, tokenize_with_offsets, tokenizer

KEY_TERMS = ["涉法涉诉", "劳动仲裁", "强制执行", "行政复议", "越级上访", "农民工工资", "征地补偿", "不动产登记", "低保", "跳楼机"]


@pytest.mark.parametrize("term", KEY_TERMS)
def test_domain_terms_stay_whole(term):
    sentence = f"关于{term}的问题，我们要求尽快处理。"
    assert term in tokenize(sentence)


def test_tokenize_is_picklable_module_function():
    assert pickle.loads(pickle.dumps(tokenize)) is tokenize


def test_own_tokenizer_instance_not_global_default():
    import jieba

    assert tokenizer() is not jieba.dt
    assert tokenizer() is tokenizer()


def test_offsets_point_into_text():
    text = "村里拖欠农民工工资，已申请劳动仲裁。"
    for word, start, end in tokenize_with_offsets(text):
        assert text[start:end] == word


def test_empty_and_whitespace():
    assert tokenize("") == []
    assert tokenize("   ") == []
