--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: mood; Type: TYPE; Schema: public; Owner: postgres
--

CREATE TYPE public.mood AS ENUM (
    'a',
    'b'
);


ALTER TYPE public.mood OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: items; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.items (
    id integer NOT NULL,
    name text,
    price numeric(10,2) DEFAULT 0,
    note text
);


ALTER TABLE public.items OWNER TO postgres;

--
-- Name: cheap; Type: VIEW; Schema: public; Owner: postgres
--

CREATE VIEW public.cheap AS
 SELECT items.id
   FROM public.items
  WHERE (items.price < (10)::numeric);


ALTER TABLE public.cheap OWNER TO postgres;

--
-- Name: logs; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.logs (
    msg text,
    n integer
);


ALTER TABLE public.logs OWNER TO postgres;

--
-- Name: pairs; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.pairs (
    a integer NOT NULL,
    b character varying(20) NOT NULL
);


ALTER TABLE public.pairs OWNER TO postgres;

--
-- Name: seq1; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.seq1
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE public.seq1 OWNER TO postgres;

--
-- Data for Name: items; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.items (id, name, price, note) FROM stdin;
1	one	1.50	\N
2	it's	2.00	tab\there
3	back\\slash	3.00	new\nline
10	ten	10.00	
\.


--
-- Data for Name: logs; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.logs (msg, n) FROM stdin;
a	1
a	1
b	\N
\.


--
-- Data for Name: pairs; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.pairs (a, b) FROM stdin;
1	x
1	y
2	x
\.


--
-- Name: seq1; Type: SEQUENCE SET; Schema: public; Owner: postgres
--

SELECT pg_catalog.setval('public.seq1', 1, false);


--
-- Name: items items_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.items
    ADD CONSTRAINT items_pkey PRIMARY KEY (id);


--
-- Name: pairs pairs_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.pairs
    ADD CONSTRAINT pairs_pkey PRIMARY KEY (a, b);


--
-- Name: items_name; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX items_name ON public.items USING btree (name);


--
-- PostgreSQL database dump complete
--


