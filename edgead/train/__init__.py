"""Build-host training: fit a detector on good images, calibrate thresholds, export a bundle (needs [train]).

This package is also the function ``edgead.train(data, out, ...)`` (:func:`edgead.train.api.train`): ``edgead.train``
names this package once any of its modules is imported, so the package itself is made callable rather than
shadowing the function.
"""
import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from edgead.train.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
