"""The credit ledger: payments, deductions, credit notes, reversals."""
