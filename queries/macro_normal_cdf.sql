-- Macro: the standard normal distribution function Φ(z), from the error function
-- approximation of Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7); DuckDB has no erf.
-- Used to turn a Mann–Kendall z into a one-sided confidence that a series increases.
create or replace macro normal_cdf(z) as
0.5 + 0.5 * sign(z) * (
    1 - (
        0.254829592 * (1 / (1 + 0.3275911 * abs(z) / sqrt(2)))
        - 0.284496736 * pow(1 / (1 + 0.3275911 * abs(z) / sqrt(2)), 2)
        + 1.421413741 * pow(1 / (1 + 0.3275911 * abs(z) / sqrt(2)), 3)
        - 1.453152027 * pow(1 / (1 + 0.3275911 * abs(z) / sqrt(2)), 4)
        + 1.061405429 * pow(1 / (1 + 0.3275911 * abs(z) / sqrt(2)), 5)
    ) * exp(-(z * z) / 2)
)
