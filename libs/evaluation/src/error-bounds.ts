/**
 * How sure an error rate measured on a finite set is: the one-sided 95% upper confidence bound of
 * a binomial proportion (Clopper-Pearson), the figure ISO/IEC 19795-1 asks a false-match rate to
 * come with. With no error in N trials it is 1 - 0.05^(1/N), about the rule of three, 3/N.
 *
 * Written here rather than taken from a statistics package: it needs only the binomial CDF, summed
 * in log space from k = 0 (k is small at the rates that matter), and a bisection on p.
 */

/** P(X <= k) for X ~ Binomial(n, p), summed term by term in log space. */
function binomialCdf(k: number, n: number, p: number): number {
  if (p <= 0) return 1;
  if (p >= 1) return k >= n ? 1 : 0;
  let logTerm = n * Math.log1p(-p); // log P(X = 0)
  let logSum = logTerm;
  const logRatio = Math.log(p) - Math.log1p(-p);
  for (let i = 0; i < k; i++) {
    logTerm += Math.log(n - i) - Math.log(i + 1) + logRatio; // log P(X = i + 1)
    const [high, low] = logSum > logTerm ? [logSum, logTerm] : [logTerm, logSum];
    logSum = high + Math.log1p(Math.exp(low - high));
  }
  return Math.min(1, Math.exp(logSum));
}

/** The exact one-sided upper confidence bound (default 95%) of a rate of `errors` in `trials`. */
export function upperBound(errors: number, trials: number, confidence = 0.95): number {
  if (!Number.isInteger(errors) || !Number.isInteger(trials) || errors < 0 || trials <= 0 || errors > trials) {
    throw new RangeError(`upperBound: expected 0 <= errors <= trials, trials > 0 (got ${errors} of ${trials})`);
  }
  if (errors === trials) return 1;
  const alpha = 1 - confidence;
  // The p at which seeing `errors` or fewer becomes as unlikely as alpha.
  let [low, high] = [errors / trials, 1];
  for (let i = 0; i < 100 && high - low > 1e-15 * Math.max(1e-300, high); i++) {
    const mid = (low + high) / 2;
    if (binomialCdf(errors, trials, mid) > alpha) low = mid;
    else high = mid;
  }
  return high;
}
