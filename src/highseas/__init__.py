"""highseas: the customer-pool side of AI outbound calling, behind the Yunfu agent API."""

__version__ = "0.1.0"
