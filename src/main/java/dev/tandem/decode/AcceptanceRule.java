package dev.tandem.decode;

import dev.tandem.runtime.ForwardResult;

/**
 * Which draft tokens the main model keeps, and which token of its own follows them: the one place the speculative
 * acceptance rule is written. Row i of the verification pass over {@code [last, d1..dk]} is the main model's
 * distribution p_i for the token after d_i (d_0 = last); each d_i is accepted with probability
 * min(1, p_i(d_i) / q_i(d_i)), the first rejected one is replaced by a draw from norm(max(0, p − q)), and after a
 * fully accepted draft a bonus token is drawn from p_k — lossless in distribution. Greedy settings make p one-hot,
 * which reduces this to "accept while the draft equals the main argmax, then emit the main argmax": output
 * identical to plain decoding, token for token, whatever q is.
 *
 * <p>Every draw comes from the sequence's {@link TokenChoice}, in row order, so a seed gives one output.
 */
final class AcceptanceRule {
    private final TokenChoice choice;
    private final Distribution residual;

    AcceptanceRule(TokenChoice choice) {
        this.choice = choice;
        this.residual = new Distribution(choice.vocabularySize());
    }

    /**
     * Checks the k draft tokens {@code context[n, n+k)}, drawn from {@code draft.q(from) .. draft.q(from+k-1)},
     * against result rows {@code firstRow .. firstRow+k} (row i: the main model after {@code context[n-1+i]}).
     * Returns the agreed length a and writes the main model's own token after them into {@code context[n+a]}, so
     * {@code context[n, n+a]} are the tokens to emit. The context must have room for n + k + 1 tokens.
     */
    int accept(ForwardResult result, int firstRow, int[] context, int n, int k, Draft draft, int from) {
        int a = 0, next = -1;
        for (; a < k; a++) {
            int d = context[n + a];
            if (choice.byArgmax()) {
                // p one-hot at the argmax: d is accepted exactly when it is the argmax, and replaced by it otherwise.
                int m = result.argmax(firstRow + a);
                if (m == d) continue;
                next = m;
                break;
            }
            // Row a is p for the token after context[n-1+a]; its penalty window is context[0, n+a).
            Distribution p = choice.distribution(result, firstRow + a, context, n + a);
            Distribution q = draft.q(from + a);
            if (choice.random().nextDouble() * q.p(d) < p.p(d)) continue;    // accept with probability min(1, p/q)
            residual.setResidual(p, q);
            next = residual.sample(choice.random());
            break;
        }
        if (next < 0) next = choice.choose(result, firstRow + k, context, n + k);   // all accepted: bonus from p_k
        context[n + a] = next;
        return a;
    }
}
