from __future__ import annotations

from highseas.agents.tokens import TOKEN_PREFIX, hash_token, new_token, shown_prefix


def test_tokens_are_long_random_and_marked() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith(TOKEN_PREFIX)
        assert len(token) >= len(TOKEN_PREFIX) + 43  # 32 random bytes, url-safe base64


def test_hash_is_stable_and_hides_the_token() -> None:
    token = new_token()
    assert hash_token(token) == hash_token(token)
    assert hash_token(token) != hash_token(new_token())
    assert token not in hash_token(token)
    assert len(hash_token(token)) == 64


def test_shown_prefix_is_not_enough_to_use() -> None:
    token = new_token()
    assert token.startswith(shown_prefix(token))
    assert len(shown_prefix(token)) <= 10 < len(token)
