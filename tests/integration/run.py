#!/usr/bin/env python3
"""Runs every integration test (t_*.py, cheap groups first); ends with
'N passed, N failed'. Usage: run.py [substring-of-test-name]"""
import sys

import harness
import t_a_config  # noqa: F401  (registration order is run order)
import t_b_forward  # noqa: F401
import t_c_reject  # noqa: F401
import t_d_failure  # noqa: F401
import t_e_signals  # noqa: F401
import t_f_streams  # noqa: F401
import t_g_filter  # noqa: F401
import t_h_pools  # noqa: F401
import t_i_tls  # noqa: F401
import t_j_saml  # noqa: F401
import t_k_saml_attacks  # noqa: F401
import t_l_meetings  # noqa: F401
import t_l_join_client  # noqa: F401
import t_m_admin  # noqa: F401
import t_n_integrity  # noqa: F401
import t_p_hostile  # noqa: F401
import t_r_hostile2  # noqa: F401
import t_v_listener  # noqa: F401
import t_x_tcp  # noqa: F401
import t_readahead  # noqa: F401
import t_t_persist_key  # noqa: F401
import t_u_headers  # noqa: F401
import t_s_site  # noqa: F401
import t_w_udp  # noqa: F401
import t_y_examples  # noqa: F401  (after t_x_tcp and t_w_udp, whose peers it uses)
import t_z_hostile3  # noqa: F401
import t_zb_cluster  # noqa: F401
import t_zc_cluster_proxy  # noqa: F401
import t_zd_cluster_config  # noqa: F401
import t_ze_cluster_sentinel  # noqa: F401
import t_zf_cluster_meetings  # noqa: F401
import t_zg_cluster_namespaces  # noqa: F401
import t_zh_edge_token  # noqa: F401
import t_o_timeouts  # noqa: F401
import t_q_chain_timeouts  # noqa: F401

sys.exit(0 if harness.run_all(sys.argv[1] if len(sys.argv) > 1 else None) else 1)
