/**
 * The admin token, sent as `Authorization: Bearer <token>`: the admin routes name it
 * in their `detail.security` (ADMIN_SECURITY); the document lists the scheme. Each
 * admin route is documented from what it declares (src/openapi/document.ts).
 */
export const ADMIN_SECURITY_SCHEME = {
  adminToken: {
    type: "http",
    scheme: "bearer",
    description:
      "An admin token from `sluice admin token create`. With none configured, the admin API answers loopback requests only.",
  },
};
