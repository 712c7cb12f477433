"""The event engine and its adjoint: the physics once (:mod:`.physics`), the event order
(:mod:`.order`), the network as flat arrays (:mod:`.plan`), the engines (:mod:`.reference`,
:mod:`.general`, :mod:`.layered`), the batch entry points (:mod:`.batch`) and the choice
between them (:mod:`.engines`)."""
