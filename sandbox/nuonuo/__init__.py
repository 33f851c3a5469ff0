"""A local invoice provider speaking Nuonuo's open platform (诺诺开放平台) protocol: signed ``/open/v1/services``
calls, blue invoices, red-letter confirmation forms, callbacks and the invoices' PDFs (docs/invoices.md)."""
