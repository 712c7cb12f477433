"""The event path: the exact forward pass (:mod:`.simulate`, its results :mod:`.result`), the
readouts a loss sees (:mod:`.readout`), the adjoint (:mod:`.adjoint`) and ``value_and_grad``
(:mod:`.gradients`); beneath them the engines: the event order (:mod:`.order`), the network
as flat arrays (:mod:`.plan`), the readable reference engine (:mod:`.reference`), the compiled
general engine (:mod:`.general`) and layered fast path (:mod:`.layered`), the batch entry
points (:mod:`.batch`, :mod:`.parallel`) and the choice between them (:mod:`.engines`). The
closed forms they all use are :mod:`eventgrad.model.physics`."""
