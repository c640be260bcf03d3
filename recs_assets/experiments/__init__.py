"""Does a model make money? Simulated A/B tests, bandits, off-policy estimates and their agreement with offline grades.

Pure: no Dagster, no files. `environment` lets any policy (a function from user ids to ranked item
lists) serve simulated sessions and scores them with the simulator's one response model;
`ab_test` randomises users by a salted hash and analyses the business metrics with user-clustered
intervals, a sample-ratio check, guardrails, power and a decision; `bandits` runs Thompson
sampling, LinUCB, epsilon-greedy and uniform choice over candidate sources; `off_policy` estimates
a policy's click rate from logged impressions (IPS, SNIPS, DM, DR); `agreement` compares the offline
leaderboard with the online order; `plots` draws the PNG charts the UI and the report show.
"""
