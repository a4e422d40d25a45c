"""Shared foundations every app may import and that import no app: domain errors
(`core.exceptions`), outbound HTTP helpers (`core.http`), the hand-written SQL helpers of the
hot paths (`core.sql`), resource shapes and the encoders derived from them (`core.shapes`), and
how moments are written (`core.times`)."""
