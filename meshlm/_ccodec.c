/* meshlm._ccodec: an optional compiled fast path for meshlm.codec (encode and strict decode).
 *
 * It does exactly what the numpy code does (grid.py, canonical.py, the strict decoder in
 * codec.py), step for step, so that the output is the same byte for byte (tests compare the two
 * on random meshes); codec.py uses it when it was built and falls back to numpy otherwise. Built
 * with -ffp-contract=off so that the quantization arithmetic is not fused into FMA instructions
 * that numpy does not use.
 *
 * encode(vertices: buffer of float64 (n*3), faces: buffer of int64 (m*3), n, m, bins)
 *     -> (text, nv, nf), or an int error code (ERR_* below): codec.py then
 *     reruns the numpy path, which raises the error with its message -- or, for
 *     ERR_TWO_SIDED (a vertex set present with both windings), orients the double-sided
 *     pieces itself (canonical._orient_pieces).
 * canonical(...) same arguments -> (q, f): bytearrays of int64 (nv*3, nf*3), or an error code.
 * decode(body: str) where body is stripped text plus one "\n", bins
 *     -> (q, f) bytearrays when it is valid canonical text, else None (codec.py then finds
 *        the problem and its line with the slow path).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define QUANT_EPS 1e-4

enum { OK = 0, ERR_NONFINITE = 1, ERR_ZERO_SIZE = 2, ERR_COLLAPSE = 3, ERR_INDEX = 4,
       ERR_NOFACES = 5, ERR_MEMORY = 6, ERR_TWO_SIDED = 7 };

/* Bumped whenever the kernel's output or bail-outs change; codec.py ignores an older build. */
#define REVISION 2

typedef struct { int64_t key; int64_t idx; } KeyIdx;

static int cmp_keyidx(const void *a, const void *b) {
    const KeyIdx *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

typedef struct { int64_t r0, lo, hi, flag, r1, r2, pos; } FaceKey;

static int cmp_face(const void *a, const void *b) {
    const FaceKey *x = a, *y = b;
    if (x->r0 != y->r0) return x->r0 < y->r0 ? -1 : 1;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    if (x->hi != y->hi) return x->hi < y->hi ? -1 : 1;
    if (x->flag != y->flag) return x->flag < y->flag ? -1 : 1;
    return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

/* The canonical mesh: q (nv*3 bins, lexicographic) and faces (nf*3, 0-based, min-first,
 * sorted, unique). Mirrors codec.canonicalize. Caller frees *q_out and *f_out. */
static int canonical(const double *v, const int64_t *faces_in, int64_t n, int64_t m, int bins,
                     int64_t **q_out, int64_t *nv_out, int64_t **f_out, int64_t *nf_out) {
    int rc = OK;
    int64_t *f = NULL, *cf = NULL, *q = NULL, *inverse = NULL, *used_idx = NULL, *fq = NULL;
    unsigned char *used = NULL;
    KeyIdx *keys = NULL;
    FaceKey *fk = NULL;
    int64_t ncell = 0;
    if (m <= 0) return ERR_NOFACES;
    for (int64_t i = 0; i < 3 * n; i++)
        if (!isfinite(v[i])) return ERR_NONFINITE;
    for (int64_t i = 0; i < 3 * m; i++)
        if (faces_in[i] < 0 || faces_in[i] >= n) return ERR_INDEX;
    f = malloc(sizeof(int64_t) * 3 * m);
    cf = malloc(sizeof(int64_t) * 3 * m);
    used = malloc(n ? n : 1);
    used_idx = malloc(sizeof(int64_t) * (n ? n : 1));
    q = malloc(sizeof(int64_t) * 3 * (n ? n : 1));
    inverse = malloc(sizeof(int64_t) * (n ? n : 1));
    keys = malloc(sizeof(KeyIdx) * (n ? n : 1));
    if (!f || !cf || !used || !used_idx || !q || !inverse || !keys) { rc = ERR_MEMORY; goto done; }
    memcpy(f, faces_in, sizeof(int64_t) * 3 * m);
    const int top = bins - 1;
    for (;;) {
        memset(used, 0, n);
        for (int64_t i = 0; i < 3 * m; i++) used[f[i]] = 1;
        int64_t nu = 0;
        for (int64_t i = 0; i < n; i++)
            if (used[i]) used_idx[nu++] = i;
        /* quantize the used vertices: bounding box of those, as numpy does */
        double lo[3], hi[3];
        for (int k = 0; k < 3; k++) { lo[k] = INFINITY; hi[k] = -INFINITY; }
        for (int64_t j = 0; j < nu; j++)
            for (int k = 0; k < 3; k++) {
                double x = v[3 * used_idx[j] + k];
                if (x < lo[k]) lo[k] = x;
                if (x > hi[k]) hi[k] = x;
            }
        double extent = -INFINITY;
        for (int k = 0; k < 3; k++) {
            double e = hi[k] - lo[k];
            if (e > extent || isnan(e)) extent = e;
        }
        if (!isfinite(extent) || extent <= 0.0) { rc = ERR_ZERO_SIZE; goto done; }
        double centre[3];
        for (int k = 0; k < 3; k++) centre[k] = (lo[k] + hi[k]) * 0.5;
        const double scale = (double)top / extent;
        const double shift = 0.5 * top + QUANT_EPS;
        for (int64_t j = 0; j < nu; j++) {
            int64_t c[3];
            for (int k = 0; k < 3; k++) {
                volatile double x = (v[3 * used_idx[j] + k] - centre[k]) * scale;
                x = x + shift;
                c[k] = (int64_t)floor(x);
            }
            keys[j].key = (c[0] * bins + c[1]) * bins + c[2];
            keys[j].idx = j;
        }
        qsort(keys, (size_t)nu, sizeof(KeyIdx), cmp_keyidx);
        ncell = 0;
        for (int64_t j = 0; j < nu; j++) {
            if (j == 0 || keys[j].key != keys[j - 1].key) {
                int64_t key = keys[j].key;
                q[3 * ncell + 2] = key % bins;
                q[3 * ncell + 1] = (key / bins) % bins;
                q[3 * ncell + 0] = key / ((int64_t)bins * bins);
                ncell++;
            }
            inverse[used_idx[keys[j].idx]] = ncell - 1;
        }
        int64_t kept = 0;
        for (int64_t i = 0; i < m; i++) {
            int64_t a = inverse[f[3 * i]], b = inverse[f[3 * i + 1]], c = inverse[f[3 * i + 2]];
            if (a != b && b != c && a != c) {
                f[3 * kept] = f[3 * i]; f[3 * kept + 1] = f[3 * i + 1]; f[3 * kept + 2] = f[3 * i + 2];
                cf[3 * kept] = a; cf[3 * kept + 1] = b; cf[3 * kept + 2] = c;
                kept++;
            }
        }
        if (kept == m) break;
        if (kept == 0) { rc = ERR_COLLAPSE; goto done; }
        m = kept;
        memset(used, 0, n);
        int64_t still = 0;
        for (int64_t i = 0; i < 3 * m; i++)
            if (!used[f[i]]) { used[f[i]] = 1; still++; }
        if (still == nu) break;
        /* a vertex lost all its faces: the bounding box may shrink, normalize again */
    }
    fk = malloc(sizeof(FaceKey) * m);
    fq = malloc(sizeof(int64_t) * 3 * m);
    if (!fk || !fq) { rc = ERR_MEMORY; goto done; }
    for (int64_t i = 0; i < m; i++) {
        int64_t a = cf[3 * i], b = cf[3 * i + 1], c = cf[3 * i + 2], r0, r1, r2;
        if (b < a && b < c) { r0 = b; r1 = c; r2 = a; }
        else if (c < a && c < b) { r0 = c; r1 = a; r2 = b; }
        else { r0 = a; r1 = b; r2 = c; }
        int64_t lo = r1 < r2 ? r1 : r2;
        fk[i] = (FaceKey){r0, lo, r1 + r2 - lo, r1 != lo, r1, r2, i};
    }
    qsort(fk, (size_t)m, sizeof(FaceKey), cmp_face);
    int64_t nf = 0;
    for (int64_t i = 0; i < m; i++) {
        if (i && fk[i].r0 == fk[i - 1].r0 && fk[i].lo == fk[i - 1].lo && fk[i].hi == fk[i - 1].hi) {
            /* the same vertex set with both windings (double-sided): numpy chooses per piece */
            if (fk[i].flag != fk[i - 1].flag) { rc = ERR_TWO_SIDED; goto done; }
            continue;
        }
        fq[3 * nf] = fk[i].r0; fq[3 * nf + 1] = fk[i].r1; fq[3 * nf + 2] = fk[i].r2;
        nf++;
    }
    *q_out = q; q = NULL;
    *nv_out = ncell;
    *f_out = fq; fq = NULL;
    *nf_out = nf;
done:
    free(f); free(cf); free(q); free(inverse); free(used_idx); free(used); free(keys);
    free(fk); free(fq);
    return rc;
}

static char *put_int(char *p, int64_t x) {
    char tmp[24];
    int k = 0;
    if (x == 0) { *p++ = '0'; return p; }
    while (x > 0) { tmp[k++] = (char)('0' + x % 10); x /= 10; }
    while (k) *p++ = tmp[--k];
    return p;
}

static int parse_args(PyObject *args, Py_buffer *vb, Py_buffer *fb, int64_t *n, int64_t *m,
                      int *bins) {
    long long nn, mm;
    if (!PyArg_ParseTuple(args, "y*y*LLi", vb, fb, &nn, &mm, bins)) return -1;
    *n = nn; *m = mm;
    if (vb->len != (Py_ssize_t)(sizeof(double) * 3 * nn) ||
        fb->len != (Py_ssize_t)(sizeof(int64_t) * 3 * mm)) {
        PyBuffer_Release(vb); PyBuffer_Release(fb);
        PyErr_SetString(PyExc_ValueError, "buffer sizes do not match n and m");
        return -1;
    }
    return 0;
}

/* (q, f) as two writable bytearrays of int64 (numpy.frombuffer makes them arrays, no copy). */
static PyObject *arrays(const int64_t *q, int64_t nv, const int64_t *f, int64_t nf) {
    PyObject *a = PyByteArray_FromStringAndSize((const char *)q, (Py_ssize_t)(8 * 3 * nv));
    PyObject *b = a ? PyByteArray_FromStringAndSize((const char *)f, (Py_ssize_t)(8 * 3 * nf)) : NULL;
    if (!b) { Py_XDECREF(a); return NULL; }
    return Py_BuildValue("(NN)", a, b);
}

/* Parse (vertices, faces, n, m, bins) and run canonical() without the GIL. Returns -1 with a
 * Python error set, else canonical()'s code (OK = 0, with *q and *f to free). */
static int run_canonical(PyObject *args, int64_t **q, int64_t *nv, int64_t **f, int64_t *nf) {
    Py_buffer vb, fb;
    int64_t n, m;
    int bins, rc;
    if (parse_args(args, &vb, &fb, &n, &m, &bins)) return -1;
    Py_BEGIN_ALLOW_THREADS
    rc = canonical(vb.buf, fb.buf, n, m, bins, q, nv, f, nf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&vb); PyBuffer_Release(&fb);
    return rc;
}

static PyObject *py_encode(PyObject *self, PyObject *args) {
    int64_t nv = 0, nf = 0, *q = NULL, *f = NULL;
    int rc = run_canonical(args, &q, &nv, &f, &nf);
    if (rc < 0) return NULL;
    if (rc) return PyLong_FromLong(rc);
    /* "v " + 3 numbers of <= 4 digits and their spaces + "\n": at most 17 bytes a line */
    char *buf = malloc((size_t)(17 * nv + 2 + 3 * 22 * nf + 1));
    if (!buf) { free(q); free(f); return PyErr_NoMemory(); }
    char *p = buf;
    for (int64_t i = 0; i < nv; i++) {
        *p++ = 'v';
        for (int k = 0; k < 3; k++) { *p++ = ' '; p = put_int(p, q[3 * i + k]); }
        *p++ = '\n';
    }
    for (int64_t i = 0; i < nf; i++) {
        *p++ = 'f';
        for (int k = 0; k < 3; k++) { *p++ = ' '; p = put_int(p, f[3 * i + k] + 1); }
        *p++ = '\n';
    }
    PyObject *text = PyUnicode_DecodeASCII(buf, (Py_ssize_t)(p - buf - 1), NULL);
    free(buf); free(q); free(f);
    if (!text) return NULL;
    return Py_BuildValue("(NLL)", text, (long long)nv, (long long)nf);
}

static PyObject *py_canonical(PyObject *self, PyObject *args) {
    int64_t nv = 0, nf = 0, *q = NULL, *f = NULL;
    int rc = run_canonical(args, &q, &nv, &f, &nf);
    if (rc < 0) return NULL;
    if (rc) return PyLong_FromLong(rc);
    PyObject *out = arrays(q, nv, f, nf);
    free(q); free(f);
    return out;
}

/* One number at *pp followed by `end`: digits without a leading zero (a lone "0" is fine). */
static int read_num(const char **pp, const char *stop, char end, int64_t *out) {
    const char *p = *pp;
    if (p >= stop || *p < '0' || *p > '9') return -1;
    if (*p == '0' && p + 1 < stop && p[1] >= '0' && p[1] <= '9') return -1;
    int64_t x = 0;
    int digits = 0;
    while (p < stop && *p >= '0' && *p <= '9') {
        x = x * 10 + (*p - '0');
        if (++digits > 12) return -1;
        p++;
    }
    if (p >= stop || *p != end) return -1;
    *out = x;
    *pp = p + 1;
    return 0;
}

static PyObject *py_decode(PyObject *self, PyObject *args) {
    const char *s;
    Py_ssize_t len;
    int bins;
    if (!PyArg_ParseTuple(args, "s#i", &s, &len, &bins)) return NULL;
    const char *p = s, *stop = s + len;
    /* upper bounds on line counts: every line has at least 8 bytes ("v 0 0 0\n") */
    Py_ssize_t cap = len / 8 + 1;
    int64_t *q = malloc(sizeof(int64_t) * 3 * cap), *f = malloc(sizeof(int64_t) * 3 * cap);
    if (!q || !f) { free(q); free(f); return PyErr_NoMemory(); }
    int64_t nv = 0, nf = 0;
    int ok = 1;
    while (ok && p < stop && *p == 'v') {
        if (p + 1 >= stop || p[1] != ' ') { ok = 0; break; }
        p += 2;
        int64_t x, y, z;
        if (read_num(&p, stop, ' ', &x) || read_num(&p, stop, ' ', &y) ||
            read_num(&p, stop, '\n', &z) || x >= bins || y >= bins || z >= bins) { ok = 0; break; }
        if (nv) {
            const int64_t *w = q + 3 * (nv - 1);
            if (!(x > w[0] || (x == w[0] && (y > w[1] || (y == w[1] && z > w[2]))))) { ok = 0; break; }
        }
        q[3 * nv] = x; q[3 * nv + 1] = y; q[3 * nv + 2] = z;
        nv++;
    }
    if (nv < 3) ok = 0;
    int64_t pa = -1, plo = -1, phi = -1;
    while (ok && p < stop) {
        if (*p != 'f' || p + 1 >= stop || p[1] != ' ') { ok = 0; break; }
        p += 2;
        int64_t a, b, c;
        if (read_num(&p, stop, ' ', &a) || read_num(&p, stop, ' ', &b) ||
            read_num(&p, stop, '\n', &c)) { ok = 0; break; }
        if (a < 1 || b > nv || c > nv || a >= b || a >= c || b == c) { ok = 0; break; }
        int64_t lo = b < c ? b : c, hi = b < c ? c : b;
        if (nf && !(a > pa || (a == pa && (lo > plo || (lo == plo && hi > phi))))) { ok = 0; break; }
        pa = a; plo = lo; phi = hi;
        f[3 * nf] = a - 1; f[3 * nf + 1] = b - 1; f[3 * nf + 2] = c - 1;
        nf++;
    }
    if (!ok || nf == 0 || p != stop) { free(q); free(f); Py_RETURN_NONE; }
    PyObject *out = arrays(q, nv, f, nf);
    free(q); free(f);
    return out;
}

static PyMethodDef methods[] = {
    {"encode", py_encode, METH_VARARGS, "Canonical text of a mesh (see codec.encode)."},
    {"canonical", py_canonical, METH_VARARGS, "Canonical arrays of a mesh (see codec.canonicalize)."},
    {"decode", py_decode, METH_VARARGS, "Arrays of valid canonical text, else None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ccodec",
                                    "Compiled fast path of meshlm.codec.", -1, methods};

PyMODINIT_FUNC PyInit__ccodec(void) {
    PyObject *mod = PyModule_Create(&module);
    if (mod && PyModule_AddIntConstant(mod, "REVISION", REVISION) < 0) { Py_DECREF(mod); return NULL; }
    return mod;
}
