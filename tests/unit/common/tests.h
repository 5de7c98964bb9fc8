#ifndef CHAT_UNIT_COMMON_TESTS_H
#define CHAT_UNIT_COMMON_TESTS_H

#include <check.h>

TCase *log_tcase(void);
TCase *config_tcase(void);
TCase *token_tcase(void);
TCase *wshandshake_tcase(void);
TCase *wsdeflate_tcase(void);
TCase *protocol_tcase(void);

/* keys.c: key files made once per run by the openssl CLI (rsa.key/.pub/.crt,
 * ec.key/.pub, ec384.*, rsa1024.*, ed.*), set up before the runner forks. */
void test_keys_setup(void);
void test_keys_cleanup(void);
/* Path of a key file in a static buffer (valid until the next call). */
const char *test_key_path(const char *name);
/* The file's contents, malloc'd and NUL-terminated. */
char *test_key_read(const char *name, size_t *len);
/* Unpadded base64url of in into out (4/3 len + 4 bytes). */
void test_b64url(const unsigned char *in, size_t len, char *out);
/* header.payload signed with the private key file key_name (SHA-256, PKCS#1
 * v1.5 for RSA, r || s for EC), whatever alg the header names.  malloc'd. */
char *test_sign_pkey(const char *key_name, const char *header, const char *payload);

#endif
