package dev.tandem.decode;

/** Receives each generated token as soon as it is final. */
@FunctionalInterface
public interface TokenListener {
    /**
     * @param token     the token id
     * @param fromDraft whether a drafter proposed it and the main model accepted it (false for the main model's
     *                  own tokens)
     * @return false to stop generating after this token
     */
    boolean onToken(int token, boolean fromDraft);

    TokenListener NONE = (token, fromDraft) -> true;
}
