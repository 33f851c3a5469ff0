"""Channel sandboxes: local HTTP servers that play each payment channel with its real wire protocol.

They are part of the product (merchants and the hub develop against them without channel accounts) but never
ship in the Lambda package: nothing under ``chalicelib/`` or ``functions/`` may import this package.
"""
