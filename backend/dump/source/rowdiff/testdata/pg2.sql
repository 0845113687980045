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
    note text,
    extra integer DEFAULT 7
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
-- Name: newt; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.newt (
    k text NOT NULL
);


ALTER TABLE public.newt OWNER TO postgres;

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

COPY public.items (id, name, price, note, extra) FROM stdin;
1	one	1.50	\N	7
2	it's	5.00	tab\there	7
4	four	4.00	x	7
10	ten	10.00		7
\.


--
-- Data for Name: logs; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.logs (msg, n) FROM stdin;
a	1
a	1
c	3
\.


--
-- Data for Name: newt; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.newt (k) FROM stdin;
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
-- Name: newt newt_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.newt
    ADD CONSTRAINT newt_pkey PRIMARY KEY (k);


--
-- Name: items_name; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX items_name ON public.items USING btree (name);


--
-- PostgreSQL database dump complete
--


