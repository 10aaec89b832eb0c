/*
 * Optional C helper for ratchetpy's fast data path: WebSocket unmasking.
 *
 * unmask(mask: bytes, payload: bytes) -> bytes XORs payload with the 4-byte
 * client mask, 8 bytes at a time. Built by `pip install` when a compiler is
 * present (setup.py marks the extension optional); without it
 * ratchetpy/websocket/_fastpath.py uses Python (big-integer XOR) and
 * Autobahn's NVX for large frames.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
unmask(PyObject *self, PyObject *args)
{
    Py_buffer mask, data;
    if (!PyArg_ParseTuple(args, "y*y*:unmask", &mask, &data))
        return NULL;
    if (mask.len != 4) {
        PyBuffer_Release(&mask);
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "mask must be 4 bytes");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, data.len);
    if (out == NULL) {
        PyBuffer_Release(&mask);
        PyBuffer_Release(&data);
        return NULL;
    }
    const unsigned char *m = (const unsigned char *)mask.buf;
    const unsigned char *src = (const unsigned char *)data.buf;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t n = data.len, i = 0;
    unsigned char m8[8];
    for (int k = 0; k < 8; k++)
        m8[k] = m[k & 3];
    uint64_t word_mask;
    memcpy(&word_mask, m8, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= word_mask;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ m[i & 3];
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return out;
}

static PyMethodDef methods[] = {
    {"unmask", unmask, METH_VARARGS, "unmask(mask, payload) -> bytes: XOR payload with the 4-byte mask."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ratchetpy.websocket._speedups",
    "Optional C helpers for ratchetpy's fast data path.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
